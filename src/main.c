/*
 * main.c - the luamig command.
 */
#include "cli.h"

int main(int argc, char **argv) {
  return lm_cli_main(argc, argv);
}
