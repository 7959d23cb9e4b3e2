"""The job log on its way to the server: ``LogPump`` reads what a job's script wrote to its
log file since the last read, for the next heartbeat (the live log) or, once the job has
ended, for its report (the rest)."""

from __future__ import annotations

import codecs
import os
import threading
from pathlib import Path


class LogPump:
    """Reads what a job's script wrote to its log file since the last read, as valid text
    (bytes that are not UTF-8 become U+FFFD). A script that writes faster than the server
    should store loses the middle of its output, never the end."""

    def __init__(self, path: Path, *, max_chunk: int = 256 * 1024) -> None:
        self.path = path
        self.max_chunk = max_chunk
        self.offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()
        self._unsent = ""  # read, but the heartbeat carrying it did not arrive

    def put_back(self, text: str) -> None:
        """Text that could not be delivered: the next ``read`` returns it first."""
        with self._lock:
            self._unsent = text + self._unsent

    def read(self, *, final: bool = False) -> str:
        with self._lock:
            try:
                data, skipped = self._new_bytes()
            except FileNotFoundError:
                return ""
            self.offset += skipped + len(data)
            if skipped:  # the bytes before were dropped: start decoding afresh
                self._decoder.reset()
            text = self._decoder.decode(data, final=final)
            if skipped:
                text = f"[... {skipped} bytes of output skipped ...]\n" + text
            if self._unsent:
                text, self._unsent = self._unsent + text, ""
                if len(text) > self.max_chunk:  # a long outage: keep the end
                    dropped = len(text) - self.max_chunk
                    text = f"[... {dropped} characters of output skipped ...]\n" + text[dropped:]
            return text

    def _new_bytes(self) -> tuple[bytes, int]:
        """The bytes written since the last read (at most ``max_chunk``, the last ones), and
        how many before them are skipped. Most scripts print little: the file is opened only
        when it has grown."""
        end = os.stat(self.path).st_size
        if end <= self.offset:
            return b"", 0
        skipped = max(0, end - self.offset - self.max_chunk)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            chunks = []
            position, left = self.offset + skipped, end - self.offset - skipped
            while left > 0:
                chunk = os.pread(fd, left, position)
                if not chunk:
                    break
                chunks.append(chunk)
                position += len(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks), skipped
