/* Unit test: caps_choose_model() picks the conversion model from probe results, and says why. */
#include <stdbool.h>
#include <stdint.h>

#include "caps.h"
#include "kvm_uapi.h"
#include "test.h"

static struct caps_vm_type vm_type(unsigned long type, bool supported, int inplace,
				   int64_t mem_attrs)
{
	struct caps_vm_type t = {
		.name = type == KVM_X86_DEFAULT_VM ? "default" : "sw-protected",
		.type = type, .supported = supported, .probed = supported,
		.inplace = inplace, .mem_attrs = mem_attrs,
		/* Poisoned, so a stale model or reason cannot pass for a chosen one. */
		.model = (enum caps_model)-1, .why = "stale",
	};

	return t;
}

static void expect_model(struct caps_vm_type t, int revoke_safe, enum caps_model want,
			 const char *why)
{
	caps_choose_model(&t, revoke_safe);
	if (t.model != want)
		fprintf(stderr, "%s VM: model %s, expected %s\n", t.name,
			caps_model_name(t.model), caps_model_name(want));
	CHECK_EQ(t.model, want);
	CHECK_STR_CONTAINS(t.why, why);
	CHECK(strstr(t.why, "stale") == NULL);
}

static void test_unsupported(void)
{
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, false, 1, 8), 1, CAPS_MODEL_NONE,
		     "does not offer");
	expect_model(vm_type(KVM_X86_DEFAULT_VM, false, 0, 0), 1, CAPS_MODEL_NONE,
		     "does not offer");
}

/* Default VMs have no kernel attributes, so veil enforces the map itself. */
static void test_default_vm(void)
{
	expect_model(vm_type(KVM_X86_DEFAULT_VM, true, 0, 0), 1, CAPS_MODEL_HOST_ENFORCED,
		     "not a malicious host kernel");
	expect_model(vm_type(KVM_X86_DEFAULT_VM, true, 0, 0), 1, CAPS_MODEL_HOST_ENFORCED,
		     "revokes its mapping");
	expect_model(vm_type(KVM_X86_DEFAULT_VM, true, 0, 0), 0, CAPS_MODEL_HOST_ENFORCED,
		     "cannot revoke");
	expect_model(vm_type(KVM_X86_DEFAULT_VM, true, 0, 0), -1, CAPS_MODEL_HOST_ENFORCED,
		     "cannot revoke");
	/* Whatever attributes a default VM reports, its pages never become kernel-private. */
	expect_model(vm_type(KVM_X86_DEFAULT_VM, true, 0, 8), 1, CAPS_MODEL_HOST_ENFORCED,
		     "not a malicious host kernel");
}

static void test_sw_protected(void)
{
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, 1, 0), 1, CAPS_MODEL_IN_PLACE,
		     "in place");
	/* In-place wins when both are offered. */
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, 1, 8), 1, CAPS_MODEL_IN_PLACE,
		     "KVM_SET_MEMORY_ATTRIBUTES2");
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, 0, 8), 1, CAPS_MODEL_OUT_OF_PLACE,
		     "pin held by another party is invisible");
	/* A refused probe (-errno) is no evidence of in-place conversion. */
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, -22, 8), 1, CAPS_MODEL_OUT_OF_PLACE,
		     "invisible");
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, 0, 0), 1, CAPS_MODEL_NONE,
		     "neither");
	/* Attributes without PRIVATE (bit 3) are no private memory at all. */
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, 0, 2), 1, CAPS_MODEL_NONE, "neither");
	expect_model(vm_type(KVM_X86_SW_PROTECTED_VM, true, -22, 0), 1, CAPS_MODEL_NONE,
		     "neither");
}

static void test_model_names(void)
{
	CHECK(strcmp(caps_model_name(CAPS_MODEL_NONE), "none") == 0);
	CHECK(strcmp(caps_model_name(CAPS_MODEL_HOST_ENFORCED), "host-enforced") == 0);
	CHECK(strcmp(caps_model_name(CAPS_MODEL_OUT_OF_PLACE), "out-of-place") == 0);
	CHECK(strcmp(caps_model_name(CAPS_MODEL_IN_PLACE), "in-place") == 0);
}

int main(void)
{
	test_unsupported();
	test_default_vm();
	test_sw_protected();
	test_model_names();
	return test_done("test_caps");
}
