#!/bin/sh
# vfiobench lab init: PID 1 of the L1 guest (no systemd; Debian minbase has no init package).
#
# 1. mount the pseudo file systems (the initramfs has already moved /proc, /sys and /dev over),
# 2. mount the 9p share the L0 launcher exports (tag "share"),
# 3. run /share/job.sh with its output in /share/job.log and its exit status in /share/job.rc,
# 4. sync, unmount the share, remount / read-only (no journal replay on the next boot),
# 5. power off with sysrq "o" (minbase has no poweroff binary).
#
# Markers on the console ("vfiobench-lab: ...") let the launcher time the boot and see the result.
# If anything here fails, the script still powers off; if PID 1 exits, panic=-1 plus -no-reboot
# end the VM too.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }

mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs tmpfs /dev/shm
mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
mounted /run || mount -t tmpfs -o mode=755 tmpfs /run
mounted /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
mounted /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
hostname l1 2>/dev/null || echo l1 > /proc/sys/kernel/hostname

echo "vfiobench-lab: init up $(cut -d' ' -f1 /proc/uptime)"
modprobe 9pnet_virtio
modprobe 9p
mkdir -p /share
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share /share; then
    echo "vfiobench-lab: job start $(cut -d' ' -f1 /proc/uptime)"
    if [ -f /share/job.sh ]; then
        if [ -f /share/interactive ]; then
            # `vfiobench lab shell`: the job talks to the console itself.
            sh /share/job.sh
        else
            sh /share/job.sh > /share/job.log 2>&1
        fi
        rc=$?
    else
        echo "vfiobench-lab: no /share/job.sh"
        rc=127
    fi
    echo "$rc" > /share/job.rc
    echo "vfiobench-lab: job done rc=$rc $(cut -d' ' -f1 /proc/uptime)"
    sync
    umount /share
else
    echo "vfiobench-lab: cannot mount the 9p share"
fi
sync
mount -o remount,ro / 2>/dev/null
echo "vfiobench-lab: power off"
echo o > /proc/sysrq-trigger
while :; do sleep 1; done
