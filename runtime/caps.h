/* Linux capability names, as OCI's process.capabilities and runc's --cap
 * write them ("CAP_NET_ADMIN"). */
#ifndef RV_CAPS_H
#define RV_CAPS_H

#include <stdint.h>

#define CAPS_LAST 40                 /* CAP_CHECKPOINT_RESTORE, Linux 5.9 */

/* The capability's number, or -1 for a name this table does not know. */
int caps_number(const char *name);
/* CAP_* for 0..CAPS_LAST, NULL beyond. */
const char *caps_name(int cap);

#endif
