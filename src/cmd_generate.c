/* cmd_generate.c: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cli.h"

int cmd_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "logpipe generate: not implemented yet\n");
    return LP_EXIT_IO;
}
