"""What a step executor gives up before it runs any designer code: limits the kernel enforces.

RestrictedPython is the first wall; this is the second, which holds even if designer code found
a way out of the first. Applied by the worker to itself once its imports are done:

- resource limits: address space (memory), cumulative CPU, no files written (size 0), few
  descriptors, no core dumps, no new processes;
- no network: a network namespace of its own (only an unconfigured loopback) where permitted;
- the unprivileged `nobody` user when started as root, with no supplementary groups;
- a seccomp filter: no sockets, no exec, no fork or threads, no opening of files at all, no
  changes to the file system, no tracing of other processes or taking their descriptors, signalling
  them or attaching their shared memory.

Each step reports whether it held, so tests and `cadreflow check` can see what is in force.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
from dataclasses import dataclass
from types import ModuleType

NOBODY = 65534
CLONE_NEWNET = 0x40000000
# Descriptors the worker keeps: its protocol pipe pair, /dev/null on stdio, a few for the runtime.
MAX_DESCRIPTORS = 16
DENIED_SYSCALLS = (
    # network
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
    "recvfrom", "recvmsg",
    # new programs and processes (threads included: the worker never needs one)
    "execve", "execveat", "fork", "vfork", "clone", "clone3",
    # the file system: nothing is opened once the worker runs, nothing is changed
    "open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
    "link", "linkat", "symlink", "symlinkat", "truncate", "chmod", "fchmod", "fchmodat", "chown", "fchown",
    "lchown", "fchownat", "utime", "utimes", "utimensat", "futimesat", "chdir", "fchdir", "chroot",
    "mount", "umount2", "pivot_root", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "open_tree", "move_mount", "fsopen", "fsmount", "fspick", "uselib", "mq_open",
    # other processes and the kernel: a descriptor taken from the parent (pidfd_getfd) would be its
    # database connection; System V shared memory is how other programs share theirs
    "ptrace", "process_vm_readv", "process_vm_writev", "kill", "tkill", "tgkill", "setns", "unshare",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "kcmp", "process_madvise", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "move_pages", "migrate_pages", "shmget", "shmat", "msgget", "semget",
    "bpf", "perf_event_open", "io_uring_setup", "userfaultfd", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "swapoff",
)


@dataclass(frozen=True)
class Limits:
    """The hard limits of one executor process."""

    memory_mb: int = 768
    cpu_seconds: int = 600  # cumulative over the worker's life; it retires itself well before


def apply(limits: Limits) -> list[str]:
    """Confine the calling process for good; returns what held (e.g. ["rlimits", "netns", ...])."""
    global _PYSECCOMP  # loaded once, before the limits make loading it impossible
    _PYSECCOMP = load_seccomp()
    held = [_rlimits(limits)]
    held.append(_network_namespace())
    held.append(_drop_user())
    held.append(_seccomp())
    return [name for name in held if name]


def _rlimits(limits: Limits) -> str:
    memory = limits.memory_mb * 1024 * 1024
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the size limit fails instead of killing
    for name, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0),
                        (resource.RLIMIT_NOFILE, MAX_DESCRIPTORS), (resource.RLIMIT_NPROC, 0)):
        resource.setrlimit(name, (value, value))
    return "rlimits"


def _network_namespace() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return ""  # not permitted here (unprivileged, no user namespaces): seccomp still denies sockets
    return "netns"


def _drop_user() -> str:
    if os.geteuid() != 0:
        return "unprivileged"
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return "nobody"


def load_seccomp() -> ModuleType | None:
    """Import the seccomp bindings (before confinement: finding libseccomp runs ldconfig)."""
    try:
        import pyseccomp
    except (ImportError, OSError, AttributeError):  # libseccomp missing: the other limits still hold
        return None
    return pyseccomp  # type: ignore[no-any-return]  # the bindings ship no types


_PYSECCOMP = None


def _seccomp() -> str:
    pyseccomp = _PYSECCOMP or load_seccomp()
    if pyseccomp is None:
        return ""
    syscall_filter = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except (ValueError, OSError, RuntimeError):
            continue  # a system call this architecture does not have
    syscall_filter.load()
    return "seccomp"
