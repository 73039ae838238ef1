/*
 * target.c: where consume writes (a dated index pattern or a data stream),
 * the index template that covers it, and the start-up decision about that
 * template: use it, install it, or trust that `logpipe setup` did.
 *
 * Setup is apart from writing (as Filebeat's `setup`): an administrator's
 * `logpipe setup` installs the template once, and consume then needs only
 * the privileges to write. Consume still installs the template when it may
 * (the credentials have manage_index_templates) and must (it is missing, or
 * its _meta stamp is not this logpipe's), so a single-user deployment keeps
 * working without a setup step. Credentials without manage_index_templates
 * cannot even read templates, so consume then runs on trust and says so
 * (--verbose); docs/deploy.md lists both privilege sets.
 */
#include <stdio.h>
#include <string.h>

#include "consume/consume.h"

void lp_target_init(lp_target *t, const char *index_pattern, const char *data_stream,
                    const lp_index_settings *settings)
{
    *t = (lp_target){.name = LP_BUF_INIT, .pattern = LP_BUF_INIT};
    lp_index_template_names(data_stream ? data_stream : index_pattern, &t->name, &t->pattern);
    if (data_stream)
        lp_buf_puts_lit(&t->name, "@data-stream"); /* never a dated pattern's name: the sanitizer emits no @ */
    t->tpl = (lp_es_template){.name = lp_buf_cstr(&t->name), .pattern = lp_buf_cstr(&t->pattern),
                              .data_stream = data_stream != NULL, .settings = *settings};
}

void lp_target_free(lp_target *t)
{
    lp_buf_free(&t->name);
    lp_buf_free(&t->pattern);
}

int lp_target_ensure_template(lp_es *es, const lp_target *t, int verbose, lp_error *e)
{
    static const char *const manage[] = {"manage_index_templates", NULL};
    static const char *const none[] = {NULL};
    int may = lp_es_has_privileges(es, manage, t->tpl.pattern, none, NULL, e);
    if (may < 0)
        return -1;
    if (!may) {
        if (verbose)
            fprintf(stderr, "logpipe consume: no manage_index_templates: not checking index template %s "
                    "(install it with logpipe setup)\n", t->tpl.name);
        return 0;
    }
    lp_es_template_state state;
    if (lp_es_template_check(es, &t->tpl, &state, e))
        return -1;
    if (state == LP_TEMPLATE_CURRENT) {
        if (verbose)
            fprintf(stderr, "logpipe consume: index template %s is current\n", t->tpl.name);
        return 0;
    }
    if (lp_es_install_template(es, &t->tpl, e))
        return -1;
    if (verbose)
        fprintf(stderr, "logpipe consume: installed index template %s (%s) for %s, priority %ld\n", t->tpl.name,
                state == LP_TEMPLATE_MISSING ? "it was missing" : "its stamp was not this logpipe's",
                t->tpl.pattern, lp_es_template_priority(t->tpl.pattern));
    return 0;
}
