#include <criterion/criterion.h>

#include "vmm/x86/cpu.h"

Test(x86_segment, flat_64bit_code)
{
	struct kvm_segment s = x86_segment_from_gdt(0x00af9b000000ffffull, 2);
	cr_assert_eq(s.selector, 0x10, "__BOOT_CS");
	cr_assert_eq(s.base, 0);
	cr_assert_eq(s.limit, 0xffffffff);
	cr_assert_eq(s.type, 0xb);
	cr_assert(s.s && s.present && s.l && s.g);
	cr_assert_not(s.db, "long mode code has D clear");
	cr_assert_not(s.unusable);
}

Test(x86_segment, flat_32bit_data)
{
	struct kvm_segment s = x86_segment_from_gdt(0x00cf93000000ffffull, 3);
	cr_assert_eq(s.selector, 0x18, "__BOOT_DS");
	cr_assert_eq(s.limit, 0xffffffff);
	cr_assert_eq(s.type, 0x3);
	cr_assert(s.db && s.g && s.present);
	cr_assert_not(s.l);
}

Test(x86_segment, base_and_byte_granular_limit)
{
	struct kvm_segment s = x86_segment_from_gdt(0x12409a345678abcdull, 1);
	cr_assert_eq(s.base, 0x12345678);
	cr_assert_eq(s.limit, 0xabcd);
	cr_assert_not(s.g);
}

Test(x86_segment, absent_descriptor_is_unusable)
{
	struct kvm_segment s = x86_segment_from_gdt(0, 0);
	cr_assert(s.unusable);
	cr_assert_not(s.present);
}
