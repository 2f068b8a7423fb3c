/*
 * cli.h - the command line: parse arguments, run a command, print results
 * to stdout and progress to stderr.  Returns the exit code: 0 success,
 * 1 failure, 2 usage error.
 */
#ifndef LM_CLI_H
#define LM_CLI_H

int lm_cli_main(int argc, char **argv);

#endif
