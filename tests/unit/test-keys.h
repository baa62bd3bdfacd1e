/* SPDX-License-Identifier: MIT */
/*
 * test-keys.h — P-256 keys the unit tests derive from: key_sec1 and
 * key_pkcs8 are one key in two PEM forms, key_other another key.
 */
#pragma once

/* the cluster CA key in its SEC1 form */
static const char key_sec1[] = "-----BEGIN EC PRIVATE KEY-----\n"
			       "MHcCAQEEINpwB+cZmduPY9VkbncG9631lwlK5q2GuudYM8Ohb8p2oAoGCCqGSM49\n"
			       "AwEHoUQDQgAEe+msN+N2n6Qspt5IQQt5GhorgE8MQfGCJ1vqTgdo1DrhwCuIGiIY\n"
			       "jDLYHx1yqlYFpItc2m9Vh1Z8F4DR0COgTw==\n"
			       "-----END EC PRIVATE KEY-----\n";
/* the same key as PKCS#8 */
static const char key_pkcs8[] = "-----BEGIN PRIVATE KEY-----\n"
				"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2nAH5xmZ249j1WRu\n"
				"dwb3rfWXCUrmrYa651gzw6FvynahRANCAAR76aw343afpCym3khBC3kaGiuATwxB\n"
				"8YInW+pOB2jUOuHAK4gaIhiMMtgfHXKqVgWki1zab1WHVnwXgNHQI6BP\n"
				"-----END PRIVATE KEY-----\n";
static const char key_other[] = "-----BEGIN PRIVATE KEY-----\n"
				"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSW72CdX53CQmvKI6\n"
				"9uFu5DXL6MXbLHmYBbjx1hUm5ymhRANCAARvWnloCDLPwYCUIV+mzFLHQm3amFaf\n"
				"r1Uc5pXxLqUAOcjxPwKLOIn55Xv/UstmUbvtdr83Cpw6quUDYcGqv/nU\n"
				"-----END PRIVATE KEY-----\n";
