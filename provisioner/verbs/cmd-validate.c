/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "verbs.h"

int verb_validate(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	log_error("'validate' is not implemented yet");
	return EXIT_FAIL;
}
