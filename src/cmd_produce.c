/* cmd_produce.c: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cli.h"

int cmd_produce(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "logpipe produce: not implemented yet\n");
    return LP_EXIT_IO;
}
