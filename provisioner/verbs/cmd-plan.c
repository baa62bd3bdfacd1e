/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "verbs.h"

int verb_plan(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	log_error("'plan' is not implemented yet");
	return EXIT_FAIL;
}
