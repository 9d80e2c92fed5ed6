"""Duplicate archive discs (R13; SPEC §14.11): build.py builds them (`build_disc`),
layout.py writes and reads the ISO images, bundle/ is the offline verifier put on each
disc, cli.py has `sealcam export disc` and the disc part of `sealcam verify`."""

__all__ = ["build_disc"]


def __getattr__(name):              # lazy: `sealcam verify` need not load the catalogue
    if name == "build_disc":
        from .build import build_disc
        return build_disc
    raise AttributeError(name)
