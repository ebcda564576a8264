# The Python twin of examples/taskgroup.c: a TaskGroup of three tasks, one
# of which fails; the failure cancels the task still running, and the
# group reports it when it closes.
import asyncio


async def fetch(name, delay, fail=False):
    try:
        await asyncio.sleep(delay)
    except asyncio.CancelledError:
        print(f"{name} cancelled")
        raise
    if fail:
        raise ValueError(f"{name} failed")
    print(f"{name} done")
    return name


async def main():
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fetch("a", 0.1))
            tg.create_task(fetch("b", 0.2, fail=True))
            tg.create_task(fetch("c", 0.3))
            print("all started")
    except* ValueError as group:
        for e in group.exceptions:
            print(f"error: {e}")
    print("group closed")


asyncio.run(main())
