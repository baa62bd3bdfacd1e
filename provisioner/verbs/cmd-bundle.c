/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "verbs.h"

int verb_bundle_create(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	log_error("'bundle create' is not implemented yet");
	return EXIT_FAIL;
}

int verb_bundle_verify(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	log_error("'bundle verify' is not implemented yet");
	return EXIT_FAIL;
}
