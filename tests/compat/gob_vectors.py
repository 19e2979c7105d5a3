#!/root/.cache/openim-venv/bin/python
"""Check the hex vectors of docs/gob-envelope.md against the real `openim-sdk-core` codec.

Requests are encoded by the package's own `encode_general_ws_req_stream`; responses (made by Go's
encoding/gob from OpenIM v3's `Resp` struct) are decoded by the package's own decoder, exactly as
`OpenIMWSSDK._handle_binary_frame` does (gunzip if possible, else raw). Exit 0 when all match.
"""

import gzip
import sys

from openim_sdk import gob_codec as g

RESP_DEF = (
    "60ff81030101045265737001ff82000106010d5265714964656e74696669657201040001074d7367496e6372010c00"
    "010b4f7065726174696f6e4944010c000107457272436f646501040001064572724d7367010c00010444617461010a000000"
)
REQ_DEF = g.REQ_TYPE_DEF_FRAME.hex()

REQUESTS = [
    ("a", {"ReqIdentifier": 1003, "SendID": "u1", "OperationID": "op1", "MsgIncr": "u1_op1", "Data": b"\x0a\x02hi"},
     REQ_DEF + "1eff8001fe07d60202753101036f7031010675315f6f703101040a02686900"),
    ("b", {"ReqIdentifier": 1001, "MsgIncr": "u1_op2"},
     REQ_DEF + "0fff8001fe07d2040675315f6f703200"),
]
RESPONSES = [
    ("c", RESP_DEF + "0fff8201fe0fa202026f700302010200",
     dict(ReqIdentifier=2001, MsgIncr="", OperationID="op", ErrCode=0, ErrMsg="", Data=b"\x01\x02")),
    ("c'", RESP_DEF + "18ff8201fe0fa202026f7001fe177201036261640102010200",
     dict(ReqIdentifier=2001, MsgIncr="", OperationID="op", ErrCode=3001, ErrMsg="bad", Data=b"\x01\x02")),
    ("kick", RESP_DEF + "07ff8201fe0fa400",
     dict(ReqIdentifier=2002, MsgIncr="", OperationID="", ErrCode=0, ErrMsg="", Data=b"")),
    ("reply-a", RESP_DEF + "19ff8201fe07d6010675315f6f703101036f703103030a017300",
     dict(ReqIdentifier=1003, MsgIncr="u1_op1", OperationID="op1", ErrCode=0, ErrMsg="", Data=b"\x0a\x01s")),
]


def decode_like_client(frame: bytes) -> dict:
    try:
        stream = gzip.decompress(frame)
    except Exception:
        stream = frame
    orders = {}
    out = []
    for fr in g.parse_gob_frames(stream):
        if fr.is_type_def:
            if g.maybe_is_general_ws_resp_type_def(fr.payload):
                orders[fr.type_id] = g.extract_general_ws_resp_field_order(fr.payload)
            continue
        resp, _ = g.decode_general_ws_resp_payload_best_effort(fr.payload, orders.get(fr.type_id))
        out.append(resp)
    assert len(out) == 1, out
    return out[0]


def main() -> int:
    failed = 0
    for name, req, want in REQUESTS:
        got = g.encode_general_ws_req_stream(req, include_type_def=True).hex()
        ok = got == want
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} request ({name}) {got}")
    for name, hexstr, want in RESPONSES:
        raw = bytes.fromhex(hexstr)
        for label, frame in (("raw", raw), ("gzip", gzip.compress(raw))):
            got = decode_like_client(frame)
            ok = got == want
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} response ({name}, {label}) -> {got}")
    total = len(REQUESTS) + 2 * len(RESPONSES)
    print(f"gob_vectors: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
