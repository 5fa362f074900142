#include "devices/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/cleanup.h"

int net_tap_open(const char *name, char out_name[IFNAMSIZ], struct rv_err *err)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr = (int)NET_HDR_BYTES;
	_cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return rv_fail(err, errno, "open /dev/net/tun (is the tun module loaded?)");
	if (snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name) >= (int)sizeof(ifr.ifr_name))
		return rv_failx(err, ENAMETOOLONG, "tap name '%s': at most %d characters", name,
				IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return rv_fail(err, errno, "create tap %s%s", name,
			       errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
	/* The guest's header has num_buffers (mergeable rx buffers): 12 bytes,
	 * not the tap's default 10. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return rv_fail(err, errno, "tap %s: %d-byte virtio-net headers", ifr.ifr_name, hdr);
	snprintf(out_name, IFNAMSIZ, "%s", ifr.ifr_name);
	int ret = fd;
	fd = -1;
	return ret;
}
