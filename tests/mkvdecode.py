"""What FFmpeg (PyAV) decodes from a recorder's Matroska segment, for the tests."""
import io


def counts(container):
    """(video frames, audio samples) decoded from an open PyAV container."""
    nv = na = 0
    for pkt in container.demux():
        for fr in pkt.decode():
            if pkt.stream.type == "video":
                nv += 1
            else:
                na += fr.samples
    return nv, na


def decode(data):
    """(video frames, audio samples) FFmpeg (PyAV) decodes from Matroska bytes."""
    import av
    with av.open(io.BytesIO(data), format="matroska") as f:
        return counts(f)


_SEGMENT, _CLUSTER = 0x18538067, 0x1F43B675      # masters entered (their size may be unknown)
_TIMESTAMP, _SIMPLEBLOCK = 0xE7, 0xA3


def _vint(data, i, keep_marker):
    # an EBML variable-size integer at data[i]: (value, next index); None value = unknown size
    b = data[i]
    w = 1
    while w <= 8 and not b & (0x80 >> (w - 1)):
        w += 1
    if w > 8 or i + w > len(data):
        raise ValueError("bad EBML integer at byte %d" % i)
    v = int.from_bytes(data[i:i + w], "big")
    if keep_marker:
        return v, i + w
    v &= (1 << (7 * w)) - 1
    return (None if v == (1 << (7 * w)) - 1 else v), i + w


def blocks(data):
    """Every complete SimpleBlock of a live Matroska file (our muxer's profile: Segment and
    Clusters entered, everything else skipped), in file order, as (start byte, end byte,
    track, time ms, payload). Parsed from the bytes, independent of FFmpeg."""
    out = []
    i, cluster_t = 0, 0
    while i < len(data):
        try:
            eid, j = _vint(data, i, True)
            size, k = _vint(data, j, False)
        except (ValueError, IndexError):
            break                                   # a cut inside an element head
        if eid in (_SEGMENT, _CLUSTER):
            i = k
            continue
        if size is None or k + size > len(data):
            break                                   # a cut inside an element
        if eid == _TIMESTAMP:
            cluster_t = int.from_bytes(data[k:k + size], "big")
        elif eid == _SIMPLEBLOCK:
            track, m = _vint(data, k, False)
            rel = int.from_bytes(data[m:m + 2], "big", signed=True)
            out.append((i, k + size, track, cluster_t + rel, data[m + 3:k + size]))
        i = k + size
    return out


def audio_pcm(data):
    """The audio FFmpeg (PyAV) decodes from Matroska bytes: s16le mono bytes."""
    import av
    out = bytearray()
    with av.open(io.BytesIO(data), format="matroska") as f:
        for fr in f.decode(audio=0):
            assert fr.format.name == "s16" and len(fr.layout.channels) == 1, fr
            out += bytes(fr.planes[0])[:2 * fr.samples]
    return bytes(out)
