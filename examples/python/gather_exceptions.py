# The seed note's two return_exceptions examples in one file, with task(n)
# sleeping n tenths of a second instead of n seconds.
#
#   python3 gather_exceptions.py                      # without return_exceptions:
#                                                     # traceback on stderr, exit 1
#   python3 gather_exceptions.py --return-exceptions  # prints the results list
import asyncio
import sys

async def task(n):
    if n == 2:
        raise ValueError("Something went wrong!")  # This will cause an error
    await asyncio.sleep(n / 10)
    return f"Task {n} done"

async def main():
    tasks = [task(1), task(2), task(3)]
    results = await asyncio.gather(*tasks)  # No `return_exceptions=True`

async def main_return_exceptions():
    tasks = [task(1), task(2), task(3)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    print(results)  # The exception will be part of the results list

if sys.argv[1:] == ["--return-exceptions"]:
    asyncio.run(main_return_exceptions())
elif sys.argv[1:] == []:
    asyncio.run(main())
else:
    print("usage: gather_exceptions.py [--return-exceptions]", file=sys.stderr)
    sys.exit(2)
