/*
 * line_event: see line_event.h.
 */
#include "line_event.h"

int line_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return 0;
    }
    return 1;
}

int line_event(source_event *ev, line_result r, const char *line, size_t len, const char *source,
               const char *scope, uint64_t id_position, char *msg_id)
{
    if (r == LINE_TOO_LONG) {
        ev->skip_reason = "line_too_long";
        ev->len = len;
        return 1;
    }
    if (line_blank(line, len))
        return 0;
    source_event_id(source, scope, id_position, line, len, msg_id);
    ev->body = line;
    ev->len = len;
    ev->msg_id = msg_id;
    return 1;
}
