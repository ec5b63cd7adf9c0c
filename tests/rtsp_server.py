"""A local RTSP stream of one photo, for tests (GStreamer's RTSP server, run by the system's Python, which has
PyGObject): ``python3 tests/rtsp_server.py PORT PHOTO.jpg`` serves rtsp://127.0.0.1:PORT/live (MJPEG, 10 FPS)."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, photo = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( filesrc location={photo} ! jpegdec ! imagefreeze ! videorate ! video/x-raw,framerate=10/1 "
                   "! videoconvert ! jpegenc ! rtpjpegpay name=pay0 pt=26 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/live", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
