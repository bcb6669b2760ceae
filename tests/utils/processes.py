"""What is left of a service's process group."""

from pathlib import Path

from infra import processes


def live_group_members(pgid: int) -> list[int]:
    """The processes of one process group, zombies aside: a service and its children.

    A killed service's orphaned child is reparented to init, which may never reap it (a
    container's init often does not): as a zombie it has ended all the same.
    """
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = processes.proc_stat(int(stat.parent.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members
