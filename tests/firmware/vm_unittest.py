# Runs firmware unittest modules on MicroPython (or CPython): vm_unittest.py MODULE...
# Prints one line per test and a closing line "N passed, N failed"; sets the exit code.
import sys
import unittest

try:
    import jshal
    names = list(jshal.argv())
except ImportError:
    jshal = None
    names = sys.argv[1:]



def _lazy(check, fmt):
    # MicroPython's unittest formats an assertion's message (the repr of both values)
    # before it checks: for a card's files (about 2 MB) that took minutes. The same check
    # and message, formatted only when it fails.
    def method(self, x, y, msg=""):
        if not check(x, y):
            raise AssertionError(msg or fmt % (x, y))
    return method


if sys.implementation.name == "micropython":
    T = unittest.TestCase
    T.assertEqual = _lazy(lambda x, y: x == y, "%r vs (expected) %r")
    T.assertNotEqual = _lazy(lambda x, y: x != y, "%r not expected to be equal %r")
    T.assertIn = _lazy(lambda x, y: x in y, "Expected %r to be in %r")

suite = unittest.TestSuite()
for name in names:
    mod = __import__(name)
    for attr in dir(mod):
        obj = getattr(mod, attr)
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj is not unittest.TestCase:
            suite.addTest(obj)
res = unittest.TestRunner().run(suite)
bad = len(res.failures) + len(res.errors)
print("VM-RESULT %d passed, %d failed" % (res.testsRun - bad, bad))
if jshal:
    jshal.exit(0 if bad == 0 else 1)
else:
    sys.exit(0 if bad == 0 else 1)
