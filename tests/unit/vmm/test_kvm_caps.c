#include <criterion/criterion.h>
#include <string.h>

#include "vmm/kvm.h"

static int all_but(void *ctx, long cap)
{
	return cap == *(long *)ctx ? 0 : 1;
}

Test(kvm_caps, all_present_passes)
{
	long none = -1;
	struct rv_err err;
	cr_assert_eq(kvm_check_caps(all_but, &none, &err), 0);
}

Test(kvm_caps, a_missing_capability_is_named_with_what_it_is_for)
{
	long missing = KVM_CAP_IRQFD;
	struct rv_err err;
	cr_assert_eq(kvm_check_caps(all_but, &missing, &err), -1);
	cr_assert_str_eq(err.msg, "KVM lacks KVM_CAP_IRQFD, needed for device interrupts: "
			 "upgrade the host kernel");
}
