/* cmd_consume.c: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cli.h"

int cmd_consume(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "logpipe consume: not implemented yet\n");
    return LP_EXIT_IO;
}
