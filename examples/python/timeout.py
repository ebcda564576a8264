# The Python twin of examples/timeout.c: a timeout scope around a slow
# call, and wait_for with a task that makes it in time and one that does
# not.
import asyncio


async def slow():
    await asyncio.sleep(10)


async def main():
    try:
        async with asyncio.timeout(0.1):
            await slow()
    except TimeoutError:
        print("slow() timed out")
    task = asyncio.create_task(asyncio.sleep(0.05, result="fast"))
    print(await asyncio.wait_for(task, timeout=1))
    try:
        await asyncio.wait_for(slow(), timeout=0.1)
    except TimeoutError:
        print("wait_for timed out")


asyncio.run(main())
