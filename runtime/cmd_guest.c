/* Verbs that boot a guest. They check the host's KVM first, so that a kvm_pvm
 * host gets one clear line pointing at the testbed instead of an emulation error
 * deep inside the VMM. */
#include <errno.h>

#include "runtime/cli.h"
#include "vmm/kvm_host.h"

int cmd_guest_verb(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct kvm_host host;

	(void)cli;
	(void)argc;
	kvm_host_detect("/", &host);
	if (kvm_host_check_bootable(&host, err) < 0)
		return rv_wrap(err, "%s", argv[0]);
	return rv_failx(err, ENOSYS, "%s: booting guests is not part of this build yet", argv[0]);
}
