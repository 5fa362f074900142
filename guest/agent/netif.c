/* The guest's network interfaces. Without a network device the container
 * still has its loopback, as a runc container in a fresh network namespace
 * has, once it is up: services that talk to themselves over 127.0.0.1 work. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest/agent/agent.h"

void netif_loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		agent_warn("loopback: socket: %s", strerror(errno));
		return;
	}
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0))
		agent_warn("loopback: bring lo up: %s", strerror(errno));
	close(fd);
}
