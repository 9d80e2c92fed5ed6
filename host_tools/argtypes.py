"""argparse value types shared by the sealcam verbs (and `sim serve`): each names the
value it could not take."""
import argparse


def _number(conv, word, ok, rule):
    def parse(s):
        try:
            x = conv(s)
        except ValueError:
            raise argparse.ArgumentTypeError("not %s: %r" % (word, s)) from None
        if not ok(x):
            raise argparse.ArgumentTypeError("must be %s: %r" % (rule, s))
        return x
    return parse


integer = _number(int, "an integer", lambda x: True, "")
positive_int = _number(int, "an integer", lambda x: x > 0, "> 0")
positive_float = _number(float, "a number", lambda x: x > 0, "> 0")
nonneg_float = _number(float, "a number", lambda x: x >= 0, ">= 0")
