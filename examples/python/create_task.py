# The seed note's create_task example, sleeps scaled from seconds to tenths of
# a second (2 s -> 0.2 s, 3 s -> 0.3 s) so the test suite runs it quickly;
# the order of the lines does not depend on the scale.
import asyncio

async def task():
    print("Task started")
    await asyncio.sleep(0.2)
    print("Task finished")

async def main():
    print("Main started")
    asyncio.create_task(task())  # Task is scheduled immediately
    print("Main continues running")
    await asyncio.sleep(0.3)  # Keeps event loop alive
    print("Main finished")

asyncio.run(main())
