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
