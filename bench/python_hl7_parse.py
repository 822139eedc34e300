#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The HL7 parse benchmark with Debian's python3-hl7, for comparison with hl7_parse_bench.

Usage: /usr/bin/python3 bench/python_hl7_parse.py FILE

Streams FILE line by line (CR, LF or CR LF), cuts it into messages at each MSH, parses every
message with hl7.parse and decodes the same OBX fields as the C++ benchmark: OBX-3 (all six
components), OBX-5, OBX-6.1, OBX-7, OBX-11 and OBX-14 (as a datetime). Prints MB/s, messages/s,
OBX/s and peak RSS.
"""
import resource
import sys
import time

import hl7


def extract(message, totals):
    for segment in message:
        if str(segment[0]) != "OBX":
            continue
        totals["obx"] += 1
        n = 0
        for c in range(1, 7):
            n += len(segment.extract_field(field_num=3, component_num=c))
        # OBX-5 and OBX-7 whole (an SN value has components), decoded like the C++ side.
        n += len(message.unescape(str(segment(5)))) if len(segment) > 5 else 0
        n += len(segment.extract_field(field_num=6, component_num=1))
        n += len(message.unescape(str(segment(7)))) if len(segment) > 7 else 0
        status = segment.extract_field(field_num=11)
        n += ord(status[0]) if status else 0
        stamp = segment.extract_field(field_num=14)
        if stamp:
            n += hl7.parse_datetime(stamp).minute
        totals["checksum"] += n


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    totals = {"bytes": 0, "messages": 0, "obx": 0, "errors": 0, "checksum": 0}
    segments = []

    def flush():
        if not segments:
            return
        totals["messages"] += 1
        try:
            extract(hl7.parse("\r".join(segments)), totals)
        except Exception:  # a refused message counts, like a ParseError on the C++ side
            totals["errors"] += 1
        segments.clear()

    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    # newline="" keeps CR, LF and CR LF as line ends without translating them; latin-1 maps every
    # byte to one character, so byte counts stay exact.
    with open(sys.argv[1], "r", encoding="latin-1", newline="") as f:
        for line in f:
            totals["bytes"] += len(line)
            line = line.rstrip("\r\n")
            if not line:
                continue
            if line.startswith("MSH"):
                flush()
            segments.append(line)
    flush()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    rss_mib = usage.ru_maxrss / 1024
    mb = totals["bytes"] / 1e6
    print(
        f"Python hl7 {hl7.get_version()} (parse + decode OBX): {mb:.1f} MB in {seconds:.3f} s: "
        f"{mb / seconds:.1f} MB/s, {totals['messages'] / seconds:.0f} messages/s, "
        f"{totals['obx'] / seconds:.0f} OBX/s, CPU {mb / cpu:.1f} MB/s, peak RSS {rss_mib:.1f} MiB, "
        f"{totals['errors']} errors, checksum {totals['checksum']}"
    )
    return 0 if totals["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
