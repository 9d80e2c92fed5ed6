# Small CBOR files in internal flash (trust list, receipt state, assignment, calibration).
# Each is replaced whole: write NAME.new, then replace NAME with it; a reader takes NAME,
# or NAME.new if a cut left only that one.
from sealcamfw import cbor


def _new(name):
    return name[:name.rfind(".")] + ".new" if "." in name else name + ".new"


def read(flash, name, default=None):
    for n in (name, _new(name)):
        if flash.size(n) > 0:
            try:
                return cbor.loads(flash.read(n))
            except Exception:
                pass
    return default


def write(flash, name, obj):
    tmp = _new(name)
    f = flash.create(tmp)
    f.write(cbor.dumps(obj))
    f.flush()
    f.close()
    flash.replace(tmp, name)
