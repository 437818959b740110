#!/usr/bin/python3
"""A WHIP publisher built on GStreamer's webrtcbin, publishing the way OBS does: an Opus audio m-line first,
then H.264 video, both sendonly, one BUNDLE transport, non-trickle (wait for ICE gathering to complete, POST
the full offer, apply the answer). Used by tests/integration/whip-gstreamer.test.ts. Debian's
simple-whip-client aborts (NOTES-webrtc.md), hence this script.

Prints one status line per event on stdout ("posted 201 /sessions/...", "connection connected", ...).
On SIGTERM/SIGINT it DELETEs the session resource and exits 0; on a failure it exits non-zero.
"""
import argparse
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="WHIP endpoint, e.g. http://127.0.0.1:8080/whip/main")
    parser.add_argument("--token", help="Bearer token")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--no-audio", action="store_true")
    args = parser.parse_args()

    Gst.init(None)
    audio = (
        ""
        if args.no_audio
        else "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay pt=111 ! "
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w. "
    )
    # Audio is linked first so its m-line comes first, as in OBS's offer (it carries the BUNDLE transport).
    pipeline = Gst.parse_launch(
        "webrtcbin name=w bundle-policy=max-bundle "
        + audio
        + f"videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
        f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 ! videoconvert ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1500 ! "
        "video/x-h264,profile=constrained-baseline ! "
        "rtph264pay config-interval=-1 pt=102 aggregate-mode=zero-latency ! "
        "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! w."
    )
    webrtc = pipeline.get_by_name("w")
    loop = GLib.MainLoop()
    state = {"location": None, "exit": 0}
    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    def say(line: str) -> None:
        print(line, flush=True)

    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        state["exit"] = 1
        loop.quit()

    def post_offer() -> None:
        offer = webrtc.get_property("local-description").sdp.as_text()
        if os.environ.get("GST_WHIP_DUMP_SDP"):
            print(offer, file=sys.stderr, flush=True)
        request = urllib.request.Request(
            args.url, data=offer.encode(), method="POST", headers={"Content-Type": "application/sdp", **auth}
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                answer = response.read().decode()
                location = response.headers.get("Location")
                state["location"] = urllib.parse.urljoin(args.url, location) if location else None
                say(f"posted {response.status} {location}")
        except urllib.error.HTTPError as error:
            fail(f"WHIP POST answered {error.code}: {error.read().decode().strip()}")
            return
        except OSError as error:
            fail(f"WHIP POST failed: {error}")
            return
        # What the server answered per m-line, e.g. "answer audio recvonly" (a publisher must get recvonly).
        kind = None
        for line in answer.splitlines():
            if line.startswith("m="):
                kind = line[2:].split(" ")[0]
            elif kind and line.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
                say(f"answer {kind} {line.strip()[2:]}")
        ok, sdp = GstSdp.SDPMessage.new_from_text(answer)
        if ok != GstSdp.SDPResult.OK:
            fail("the answer is not SDP")
            return
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        webrtc.emit("set-remote-description", description, Gst.Promise.new())

    def on_gathering(element, _pspec) -> None:
        # Non-trickle, like OBS: the offer goes out once it carries every candidate.
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(lambda: post_offer() and False)

    def on_offer(promise: Gst.Promise) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            fail(f"webrtcbin made no offer: {reply.to_string() if reply is not None else 'no reply'}")
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())
        say("offer created")

    def on_negotiation_needed(element) -> None:
        element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer))

    def on_connection_state(element, _pspec) -> None:
        value = element.get_property("connection-state")
        say(f"connection {value.value_nick}")
        if value == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            fail("the peer connection failed")

    def on_message(_bus, message) -> None:
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            fail(f"{error.message} ({debug})")

    def stop(*_args) -> bool:
        if state["location"]:
            try:
                urllib.request.urlopen(urllib.request.Request(state["location"], method="DELETE", headers=auth), timeout=5)
                say("deleted")
            except OSError as error:
                print(f"DELETE failed: {error}", file=sys.stderr, flush=True)
        loop.quit()
        return False

    webrtc.connect("on-negotiation-needed", on_negotiation_needed)
    webrtc.connect("notify::ice-gathering-state", on_gathering)
    webrtc.connect("notify::connection-state", on_connection_state)
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    # A publisher only sends: the answer must come back recvonly and nothing may flow towards us.
    pipeline.set_state(Gst.State.READY)
    # (PyGObject cannot read get-transceivers' GArray of pointers; get-transceiver by index works.)
    index = 0
    while (transceiver := webrtc.emit("get-transceiver", index)) is not None:
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        index += 1
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)
    pipeline.set_state(Gst.State.PLAYING)
    say("playing")
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return state["exit"]


if __name__ == "__main__":
    sys.exit(main())
