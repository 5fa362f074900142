/* runvm boot (internal): the VMM process. Refuses up front on a host whose KVM
 * cannot boot a Linux guest, like every verb that boots one. */
#include "runtime/cli.h"
#include "vmm/boot_cli.h"
#include "vmm/kvm_host.h"

int cmd_boot(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct kvm_host host;

	kvm_host_detect("/", &host);
	if (kvm_host_check_bootable(&host, err) < 0)
		return rv_wrap(err, "boot");
	if (vmm_boot(argc, argv, &cli->log, &cli->exit_code, err) < 0)
		return rv_wrap(err, "boot");
	return 0;
}
