/* Host IRQ handler names (pure C, no kernel types: tests compile it with gcc too).
 * vfio-pci names an MSI-X handler "vfio-msix[N](BDF)" (drivers/vfio/pci/vfio_pci_intrs.c).
 * IRQ_NAME_PREFIX (a string literal, -D) selects the handlers; the vector is N. */
#ifndef VFIOBENCH_IRQ_NAME_BPF_H
#define VFIOBENCH_IRQ_NAME_BPF_H

#ifndef IRQ_NAME_PREFIX
#define IRQ_NAME_PREFIX "vfio-msix"
#endif
#define VB_IRQ_PREFIX_LEN (sizeof(IRQ_NAME_PREFIX) - 1)
#define VB_IRQ_NAME_LEN 32

/* 1 when the NUL-terminated name (a VB_IRQ_NAME_LEN buffer) starts with IRQ_NAME_PREFIX */
static __always_inline int vb_irq_name_match(const char *name)
{
#pragma unroll
	for (int i = 0; i < (int)VB_IRQ_PREFIX_LEN; i++)
		if (name[i] != IRQ_NAME_PREFIX[i])
			return 0;
	return 1;
}

/* N of the first "[N]" after the prefix (at most 6 digits), or -1 */
static __always_inline int vb_irq_name_vector(const char *name)
{
	int vector = -1, v = 0, state = 0, digits = 0;
#pragma unroll
	for (int i = (int)VB_IRQ_PREFIX_LEN; i < VB_IRQ_NAME_LEN; i++) {
		char c = name[i];
		if (c == 0)
			break;
		if (state == 0) {
			if (c == '[')
				state = 1;
		} else if (c >= '0' && c <= '9' && digits < 6) {
			v = v * 10 + (c - '0');
			digits++;
		} else {
			if (c == ']' && digits > 0)
				vector = v;
			break;
		}
	}
	return vector;
}

#endif
