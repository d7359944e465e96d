"""eBPF probes of the VFIO MSI-X path, compiled and attached with BCC.

Modules, each with one job:

- :mod:`.catalog` — the probes (``set_irqs_ioctl``, ``set_vector_signal``, ``pba_toggle``,
  ``transaction_commit``, ``kvm_ioctls``, and ``irq_path``, whose parts attach or are skipped one
  by one), their
  numpy event dtypes (mirroring ``bpf/events.bpf.h``) and tables;
- ``bpf/*.bpf.c`` — the BPF C, one file per probe plus ``common.bpf.c`` and the shared headers;
- :mod:`.program` — the program text and ``-D`` flags (what ``vfiobench record --print-bpf`` shows);
- :mod:`.resolve` — prerequisite checks raising the named errors of :mod:`vfiobench.errors`
  (for ``irq_path``: each part resolved or skipped with the reason; inlined copies found with
  ``addr2line``);
- :mod:`.headers` — kernel headers for BCC (merging Debian's two header trees when needed);
- :mod:`.ringbuf` — the batch ring-buffer reader (mmap + numpy);
- :mod:`.regions` — which ``memory_region_set_enabled`` calls hit the MSI-X PBA (region names);
- :mod:`.histogram` — in-kernel log-linear histogram mode;
- :mod:`.tracer` — :class:`~vfiobench.probes.tracer.Tracer`, the context manager that owns it all.

Nothing here is imported by ``import vfiobench``; BCC itself loads only when a tracer starts.
"""
