"""A roomcast subscriber on aiortc, a WebRTC stack independent of webrtc-rs and of Chromium.

Joins a room over roomcast's signaling protocol (docs/protocol.md) with receive-only audio and
video, answers the server's offers, decodes every video track it is sent for a while, and prints
one JSON object: per forwarded video track id, the frames decoded and when the first one came:
seconds after media could first flow to it (the later of the track's arrival in an offer and the
connection's coming up). Used by tests/e2e/aiortc.test.js.

    python3 subscriber.py ws://127.0.0.1:PORT/ws ROOM SECONDS
"""

import asyncio
import json
import sys
import time

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp


class Decoded:
    """What one remote video track decoded."""

    def __init__(self, connected):
        self.arrived = time.monotonic()
        self.connected = connected
        self.frames = 0
        self.first_after = None

    def frame(self):
        self.frames += 1
        if self.first_after is None:
            now = time.monotonic()
            could_flow = max(self.arrived, self.connected.get("at", now))
            self.first_after = now - could_flow


async def decode(track, decoded):
    while True:
        try:
            await track.recv()
        except Exception:  # the track ended
            return
        decoded.frame()


async def handle(message, pc, ws):
    kind = message["type"]
    if kind in ("offer", "answer"):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type=kind))
        if kind == "offer":
            await pc.setLocalDescription(await pc.createAnswer())
            await ws.send(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
    elif kind == "candidate" and message.get("candidate"):
        init = message["candidate"]
        candidate = candidate_from_sdp(init["candidate"].split(":", 1)[1])
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)
    elif kind in ("error", "kicked", "full"):
        print(f"server said: {message}", file=sys.stderr)


async def main(url, room, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    videos = {}
    connected = {}

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.setdefault("at", time.monotonic())

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            videos[track.id] = Decoded(connected)
            asyncio.ensure_future(decode(track, videos[track.id]))

    async with websockets.connect(url, origin=url.replace("ws://", "http://").rsplit("/", 1)[0]) as ws:
        await ws.send(json.dumps({"type": "join", "room": room, "name": "aiortc"}))
        joined = json.loads(await ws.recv())
        assert joined["type"] == "joined", joined
        # aiortc gathers its candidates before it answers setLocalDescription: no trickle.
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
            except asyncio.TimeoutError:
                break
            await handle(message, pc, ws)
        await ws.send(json.dumps({"type": "leave"}))
    await pc.close()
    print(json.dumps({tid: {"frames": d.frames, "first_after": d.first_after} for tid, d in videos.items()}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
