/*
 * line_event: what an NDJSON adapter (file, stdin) hands out for one line
 * that linebuf.h split off, so both treat lines alike:
 *   - an over-long line is a skip ("line_too_long", with its size);
 *   - a blank line is nothing: blank means JSON whitespace only (space,
 *     tab, CR), so the empty lines of a CRLF file, and a stray CR, are
 *     ignored in both adapters rather than reported as invalid JSON;
 *   - any other line is an event, its body the line as read and its id
 *     source_event_id() of source, scope, position and content.
 */
#ifndef SLUICE_LINE_EVENT_H
#define SLUICE_LINE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "linebuf.h"

/* The max_line_bytes row of an NDJSON adapter's settings table (adapter.h),
 * into a long named max_line_bytes of the adapter's settings struct. */
#define LINE_SETTING_MAX_LINE_BYTES(type)                                                          \
    {                                                                                              \
        "max_line_bytes", CFG_INT, offsetof(type, max_line_bytes), "1048576", 2, 134217728,        \
            "longer lines are reported and skipped", NULL                                          \
    }

/*
 * Fills ev (whose where and position the caller has set) from the line
 * linebuf returned as r, line, len. The message id is written to msg_id
 * (SOURCE_EVENT_ID_LEN + 1 bytes, owned by the caller, which ev points
 * to); `scope` and `id_position` say where the line stands (the file's
 * generation and byte offset; "stdin" and the line number). Returns 1 for
 * an event or a skip, 0 for a blank line (ev then holds nothing to hand
 * out).
 */
int line_event(source_event *ev, line_result r, const char *line, size_t len, const char *source,
               const char *scope, uint64_t id_position, char *msg_id);

/* Whether the len bytes at line are JSON whitespace only. */
int line_blank(const char *line, size_t len);

#endif
