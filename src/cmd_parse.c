/* cmd_parse.c: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cli.h"

int cmd_parse(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "logpipe parse: not implemented yet\n");
    return LP_EXIT_IO;
}
