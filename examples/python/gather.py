# The seed note's gather example, with task(n) sleeping n tenths of a second
# instead of n seconds; the results still come back in input order.
import asyncio

async def task(n):
    await asyncio.sleep(n / 10)
    return f"Task {n} done"

async def main():
    tasks = [task(2), task(1), task(3)]
    results = await asyncio.gather(*tasks)
    print(results)

asyncio.run(main())
