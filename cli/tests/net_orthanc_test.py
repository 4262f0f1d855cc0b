#!/usr/bin/python3
"""net_orthanc_test.py AACLIP SOURCE_DIR WORK_DIR: acceptance of `aaclip serve`, `pull` and
`push` against Orthanc (Debian's orthanc package), loopback only, free ports, every wait bounded.

Orthanc is started with a generated configuration (storage in WORK_DIR, DICOM and HTTP ports
picked here, aaclip's AE titles as its modalities) and checked through its REST API:
  1. the sample study stored from Orthanc to `aaclip serve` comes back as SEG + Parametric Map +
     SR in the same study, referencing the source series and instances;
  2. storescu from 3 associations at once; a truncated dataset refused while the rest of its
     study is scored; an unknown calling AE refused; a non-image SOP class refused;
  3. `aaclip pull` by C-GET gives the same datasets as the source files; by C-MOVE (with a
     patient query) a study `aaclip score` then scores;
  4. `aaclip push` sends a score output folder; a second run sends nothing;
  5. kill -9 during receive and during scoring, restart on the same spool: each series' results
     arrive exactly once;
  6. destination down: results delivered once it comes back.
Exit 0 pass, 1 fail, 77 skipped (no Orthanc / storescu)."""
import glob
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pydicom
import pydicom.filebase
import pydicom.filewriter

AACLIP, SRC, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
SAMPLE = os.path.join(SRC, "testdata", "sample-study", "dicom")
MODEL = os.path.join(SRC, "testdata", "demo-model")
ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PROCS = []
SOURCE_SERIES = set()


def fail(msg):
    print("FAIL: " + msg, flush=True)
    cleanup()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout, what, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    fail("timed out after %g s waiting for %s" % (timeout, what))


def eventually(cond, timeout=10, step=0.05):
    """cond() became true within timeout seconds: for the node's log, which it may write just
    after the peer has seen the answer (an association acknowledged, then logged)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(step)
    return True


def run(args, timeout=120, ok=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        fail("%s exited %d:\n%s\n%s" % (" ".join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


class Orthanc:
    def __init__(self, name, modalities, dicom_port=None):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.dicom = dicom_port or free_port()
        self.http = free_port()
        cfg = {
            "Name": name, "StorageDirectory": os.path.join(self.dir, "db"),
            "IndexDirectory": os.path.join(self.dir, "db"), "Plugins": [],
            "HttpPort": self.http, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": self.dicom,
            "DicomCheckCalledAet": True, "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
            "DicomModalities": modalities, "DicomScuTimeout": 10, "HttpTimeout": 30,
            "StableAge": 1, "SyncStorageArea": False, "HttpCompressionEnabled": False,
        }
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(self.dir, "orthanc.log"), "w")
        self.proc = subprocess.Popen([ORTHANC_BIN, os.path.join(self.dir, "config.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        PROCS.append(self.proc)
        wait_for(self.alive, 60, "Orthanc %s to answer on HTTP port %d" % (name, self.http))

    def alive(self):
        try:
            return self.get("/system") is not None
        except Exception:
            return False

    def req(self, method, path, body=None, ctype="application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        r = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http, path), data=data, method=method)
        if data is not None:
            r.add_header("Content-Type", ctype)
        with urllib.request.urlopen(r, timeout=60) as resp:
            raw = resp.read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def get(self, path):
        return self.req("GET", path)

    def upload(self, folder):
        ids = set()
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                ids.add(self.req("POST", "/instances", f.read(), "application/dicom")["ParentStudy"])
        return ids

    def study_id(self, study_uid):
        r = self.req("POST", "/tools/lookup", study_uid.encode(), "text/plain")
        for x in r:
            if x["Type"] == "Study":
                return x["ID"]
        return None

    def series(self, study_uid):
        """{SeriesInstanceUID: [instance ids]} of a study, {} when absent."""
        sid = self.study_id(study_uid)
        out = {}
        for se in self.get("/studies/%s/series" % sid) if sid else []:
            out[se["MainDicomTags"]["SeriesInstanceUID"]] = se["Instances"]
        return out

    def result_count(self, study_uid):
        """Instances of a study outside its source series (the aaclip-study fixtures and the
        sample study have one series, uploaded or stored first)."""
        return sum(len(v) for k, v in self.series(study_uid).items() if k not in SOURCE_SERIES)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Serve:
    def __init__(self, name, port, dest, extra=()):
        self.spool = os.path.join(WORK, name)
        self.port = port
        self.args = [AACLIP, "serve", "--spool", self.spool, "--bind", "127.0.0.1", "--port", str(port),
                     "--model", MODEL, "--formats", "seg,pmap,sr"] + (["--destination", dest] if dest else []) + \
            list(extra)
        self.logpath = self.spool + ".log"
        self.start()

    def start(self):
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        PROCS.append(self.proc)
        wait_for(lambda: self.echo("STORESCU") == 0, 60, "aaclip serve to answer C-ECHO on %d" % self.port)

    def echo(self, aet):
        return subprocess.run(["echoscu", "-to", "5", "-aet", aet, "-aec", "AACLIP", "127.0.0.1", str(self.port)],
                              capture_output=True, timeout=30).returncode

    def status(self):
        try:
            with open(os.path.join(self.spool, "status.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def idle(self):
        s = self.status()
        return s and not s.get("queue") and not s.get("studies_receiving") and \
            s.get("counts", {}).get("series_pending", 1) == 0

    def logtext(self):
        with open(self.logpath) as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def term(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=120)
        return rc


class RawStoreSCU:
    """A minimal C-STORE SCU on the DICOM upper layer (implicit VR little endian), so a test can
    stop in the middle of a dataset: the node is then killed while it is receiving."""
    CT = "1.2.840.10008.5.1.4.1.1.2"

    def __init__(self, port, calling="RAWSCU", called="AACLIP"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.msg_id = 0
        ts = self.item(0x40, b"1.2.840.10008.1.2")
        pc = struct.pack(">BBBB", 1, 0, 0, 0) + self.item(0x30, self.CT.encode()) + ts
        user = self.item(0x51, struct.pack(">I", 16384))
        body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32) + \
            self.item(0x10, b"1.2.840.10008.3.1.1.1") + self.item(0x20, pc) + self.item(0x50, user)
        self.send_pdu(0x01, body)
        kind, data = self.read_pdu()
        if kind != 0x02:
            raise RuntimeError("association not accepted (PDU type %d)" % kind)

    @staticmethod
    def item(kind, data):
        return struct.pack(">BBH", kind, 0, len(data)) + data

    def send_pdu(self, kind, body):
        self.sock.sendall(struct.pack(">BBI", kind, 0, len(body)) + body)

    def read_exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise RuntimeError("connection closed")
            b += chunk
        return b

    def read_pdu(self):
        kind, _, n = struct.unpack(">BBI", self.read_exact(6))
        return kind, self.read_exact(n)

    def pdv(self, data, command, last):
        header = (1 if command else 0) | (2 if last else 0)
        self.send_pdu(0x04, struct.pack(">IBB", len(data) + 2, 1, header) + data)

    @staticmethod
    def element(group, elem, value):
        if len(value) % 2:
            value += b"\0"
        return struct.pack("<HHI", group, elem, len(value)) + value

    def command(self, sop_uid):
        self.msg_id += 1
        e = self.element
        body = e(0, 0x0002, self.CT.encode()) + e(0, 0x0100, struct.pack("<H", 1)) + \
            e(0, 0x0110, struct.pack("<H", self.msg_id)) + e(0, 0x0700, struct.pack("<H", 0)) + \
            e(0, 0x0800, struct.pack("<H", 0)) + e(0, 0x1000, sop_uid.encode())
        return e(0, 0x0000, struct.pack("<I", len(body))) + body

    @staticmethod
    def dataset(path):
        ds = pydicom.dcmread(path)
        buf = io.BytesIO()
        out = pydicom.filebase.DicomFileLike(buf)
        out.is_little_endian, out.is_implicit_VR = True, True
        pydicom.filewriter.write_dataset(out, ds)
        return ds.SOPInstanceUID, buf.getvalue()

    def store(self, path, fraction=1.0, short=0):
        """Sends one instance; fraction < 1 stops after that part of its dataset (no response);
        short: the dataset sent whole but that many bytes short of its last element's length."""
        uid, data = self.dataset(path)
        data = data[:len(data) - short]
        self.pdv(self.command(uid), True, True)
        cut = len(data) if fraction >= 1 else int(len(data) * fraction)
        for off in range(0, cut, 16000):
            piece = data[off:min(off + 16000, cut)]
            self.pdv(piece, False, fraction >= 1 and off + 16000 >= len(data))
        if fraction < 1:
            return None
        kind, body = self.read_pdu()
        status = body.find(struct.pack("<HHI", 0, 0x0900, 2))
        return struct.unpack("<H", body[status + 8:status + 10])[0] if kind == 4 and status >= 0 else None

    def close(self):
        self.sock.close()


def storescu(port, files, aet="STORESCU", opts=()):
    return subprocess.Popen(["storescu", "-to", "30", "-aet", aet, "-aec", "AACLIP"] + list(opts) +
                            ["127.0.0.1", str(port)] + files,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, TCP_NODELAY="1"))


def derived_study(tag, n=6, first=10):
    """n slices of the sample study as a new study (one series, new UIDs, patient tag)."""
    out = os.path.join(WORK, "study-" + tag)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    base = "2.25.%d" % (int.from_bytes(tag.encode(), "big") % 10 ** 20 + 10 ** 20)
    names = sorted(os.listdir(SAMPLE))[first:first + n]
    for i, name in enumerate(names):
        ds = pydicom.dcmread(os.path.join(SAMPLE, name))
        ds.StudyInstanceUID = base + ".1"
        ds.SeriesInstanceUID = base + ".2"
        ds.FrameOfReferenceUID = base + ".3"
        ds.SOPInstanceUID = base + ".4.%d" % (i + 1)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = "NET-" + tag.upper()
        ds.save_as(os.path.join(out, "IM%04d.dcm" % (i + 1)), write_like_original=False)
    SOURCE_SERIES.add(base + ".2")
    return out, base + ".1", base + ".2"


def files_of(folder):
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder))]


def main():
    if not os.path.exists(ORTHANC_BIN) or not shutil.which("storescu"):
        print("SKIP: Orthanc or storescu not installed (tools/install-deps.sh)")
        return 77
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    t0 = time.monotonic()
    serve_port, move_port, down_port = free_port(), free_port(), free_port()
    mods = {"aaclip": ["AACLIP", "127.0.0.1", serve_port], "puller": ["PULLER", "127.0.0.1", move_port],
            "pusher": ["PUSHER", "127.0.0.1", 104]}
    orth = Orthanc("orthanc", mods)
    dest = "ORTHANC@127.0.0.1:%d" % orth.dicom
    sample_uid = pydicom.dcmread(files_of(SAMPLE)[0]).StudyInstanceUID
    orth.upload(SAMPLE)
    src = {pydicom.dcmread(f).SOPInstanceUID: f for f in files_of(SAMPLE)}
    series_uid = pydicom.dcmread(files_of(SAMPLE)[0]).SeriesInstanceUID
    SOURCE_SERIES.add(series_uid)

    # ---- 1 + 2: Orthanc -> serve -> Orthanc; storescu x3, truncated, unknown AE, non-image
    s1 = Serve("spool1", serve_port, dest, ["--study-idle", "1.5", "--allow", "ORTHANC,STORESCU"])
    check(s1.echo("INTRUDER") != 0 and eventually(lambda: "not on the allow list" in s1.logtext()) and
          "INTRUDER" in s1.logtext(),
          "unknown calling AE refused")
    # the receive pool is filled while nothing arrives (files written ahead of time)
    wait_for(lambda: (s1.status().get("receive_pool") or {}).get("files", 0) >= 16, 60, "serve 1's receive pool")
    r = orth.req("POST", "/modalities/aaclip/store", {"Resources": [orth.study_id(sample_uid)], "Synchronous": True})
    check(r.get("InstancesCount") == 32 and r.get("FailedInstancesCount") == 0,
          "Orthanc sent the sample study by C-STORE (%s)" % {k: r.get(k) for k in ("InstancesCount", "FailedInstancesCount")})
    studies = {t: derived_study(t) for t in ("b", "c", "d")}
    # a truncated copy of one slice of study b: pixel data half as long as rows x columns says
    ds = pydicom.dcmread(os.path.join(studies["b"][0], "IM0006.dcm"))
    ds.SOPInstanceUID = ds.SOPInstanceUID + "9"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    trunc = os.path.join(WORK, "truncated.dcm")
    ds.save_as(trunc, write_like_original=False)
    senders = [storescu(serve_port, files_of(studies[t][0]) + ([trunc] if t == "b" else [])) for t in studies]
    outs = [p.communicate(timeout=120)[0] for p in senders]
    check([p.returncode != 0 for p in senders] == [True, False, False],
          "storescu from 3 associations at once: c and d complete, b reports its one refused instance")
    check(ds.SOPInstanceUID in s1.logtext() and "pixel data holds" in s1.logtext(),
          "truncated dataset refused with the ingestion's reason")
    # a non-image SOP class (Basic Text SR) is refused at negotiation
    sr = pydicom.dcmread(trunc)
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    sr.file_meta.MediaStorageSOPClassUID = sr.SOPClassUID
    sr.SOPInstanceUID = sr.SOPInstanceUID + "8"
    sr.file_meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    sr.Modality = "SR"
    del sr.PixelData
    nonimg = os.path.join(WORK, "basic-text-sr.dcm")
    sr.save_as(nonimg, write_like_original=False)
    p = storescu(serve_port, [nonimg], opts=["-R"])  # propose only the file's SOP class
    out = p.communicate(timeout=60)[0]
    check(p.returncode != 0 and eventually(lambda: "accepted: 0 of" in s1.logtext()),
          "non-image SOP class refused at negotiation")

    wait_for(lambda: orth.result_count(sample_uid) >= 4, 240, "the sample study's results in Orthanc")
    for t, (folder, st_uid, se_uid) in studies.items():
        wait_for(lambda: orth.result_count(st_uid) >= 4, 240, "study %s's results in Orthanc" % t)
    wait_for(s1.idle, 60, "serve 1 to be idle")
    pool = s1.status().get("receive_pool") or {}
    check(pool.get("received_into", 0) >= 32, "instances received into pool files (%s)" % pool)
    # in the spool: the dataset as sent, the receive record in the preamble, no padding left
    spooled = glob.glob(os.path.join(s1.spool, "incoming", sample_uid, series_uid, "*.dcm"))
    bad = []
    for f in spooled:
        raw = open(f, "rb").read()
        ds = pydicom.dcmread(f)
        sent = open(src[ds.SOPInstanceUID], "rb").read()
        if raw[:16] != b"AACLIP RECEIVE 1" or int.from_bytes(raw[16:24], "little") != len(raw) or \
                (0xFFFC, 0xFFFC) in ds or raw[-len(ds.PixelData):] != sent[-len(ds.PixelData):]:
            bad.append(f)
    check(len(spooled) == 32 and not bad, "32 spooled instances: record, no padding, pixel data as sent (bad: %s)" % bad)
    got = orth.series(sample_uid)
    classes = []
    for se, insts in got.items():
        if se == series_uid:
            continue
        for iid in insts:
            d = pydicom.dcmread(io.BytesIO(orth.req("GET", "/instances/%s/file" % iid)))
            classes.append(d.SOPClassUID.name)
            check(d.StudyInstanceUID == sample_uid, "%s in the source study" % d.SOPClassUID.name)
            refs = []
            if "ReferencedSeriesSequence" in d:
                for rs in d.ReferencedSeriesSequence:
                    refs += [(rs.SeriesInstanceUID, i.ReferencedSOPInstanceUID) for i in rs.ReferencedInstanceSequence]
            if "CurrentRequestedProcedureEvidenceSequence" in d:
                for st in d.CurrentRequestedProcedureEvidenceSequence:
                    for rs in st.ReferencedSeriesSequence:
                        refs += [(rs.SeriesInstanceUID, i.ReferencedSOPInstanceUID) for i in rs.ReferencedSOPSequence]
            src_refs = set(x[1] for x in refs if x[0] == series_uid)
            check(src_refs and src_refs <= set(src) and len(src_refs) >= 20,
                  "%s references the source series and %d of its instances" % (d.SOPClassUID.name, len(src_refs)))
    check(len(got.get(series_uid, [])) == 32 and sorted(classes) == sorted(
        ["Segmentation Storage", "Segmentation Storage", "Parametric Map Storage", "Enhanced SR Storage"]),
        "sample study in Orthanc: the 32 source instances + 2 SEG + Parametric Map + SR (%s)" % classes)
    for t, (folder, st_uid, se_uid) in studies.items():
        check(orth.result_count(st_uid) == 4, "study %s (storescu, 3 associations at once): 4 results" % t)
    b_results = os.listdir(os.path.join(s1.spool, "results", "NET-B", studies["b"][1], studies["b"][2]))
    check("seg_binary.dcm" in b_results, "study b scored without its truncated slice")
    # an instance of study c arrives again after its job ran: a new job, whose results replace the old
    c_seg = os.path.join(s1.spool, "results", "NET-C", studies["c"][1], studies["c"][2], "seg_binary.dcm")
    old_uid = pydicom.dcmread(c_seg).SOPInstanceUID
    storescu(serve_port, files_of(studies["c"][0])[:1]).communicate(timeout=60)
    wait_for(lambda: orth.result_count(studies["c"][1]) >= 8, 240, "study c's second results")
    wait_for(s1.idle, 60, "serve 1 to be idle")
    check(pydicom.dcmread(c_seg).SOPInstanceUID != old_uid and orth.result_count(studies["c"][1]) == 8,
          "an instance arriving after the job ran: a new job, its results replace the old folder and are sent")
    check(s1.term() == 0, "serve exits 0 on SIGTERM")

    # ---- 3: pull (C-GET: same datasets; C-MOVE by patient, then score)
    pulled = os.path.join(WORK, "pulled")
    run([AACLIP, "pull", "--from", dest, "--aet", "PULLER", "--study", sample_uid, "-o", pulled])
    got_files = {}
    for root, _, names in os.walk(os.path.join(pulled, sample_uid)):
        for n in names:
            d = pydicom.dcmread(os.path.join(root, n))
            got_files[d.SOPInstanceUID] = d
    same = set(src) <= set(got_files) and all(got_files[k] == pydicom.dcmread(src[k]) for k in src)
    check(same and len(got_files) == 36, "pull by C-GET: the 32 source datasets, equal element by element, and the "
          "study's 4 result objects (%d files)" % len(got_files))
    orth.upload(studies["b"][0])
    pulled2 = os.path.join(WORK, "pulled-move")
    run([AACLIP, "pull", "--from", dest, "--aet", "PULLER", "--patient", "NET-B", "--move-port", str(move_port),
         "--bind", "127.0.0.1", "-o", pulled2])
    n_moved = sum(len(f) for _, _, f in os.walk(os.path.join(pulled2, studies["b"][1])))
    n_src = len(os.listdir(os.path.join(pulled2, studies["b"][1], studies["b"][2])))
    check(n_src == 6 and n_moved == 10, "pull by C-MOVE (patient query): study b's 6 instances and its 4 results "
          "(%d, %d)" % (n_src, n_moved))
    scored = os.path.join(WORK, "scored-b")
    run([AACLIP, "score", pulled2, "-o", scored, "--model", MODEL, "--formats", "seg,pmap,sr", "--quiet"], 300)

    # ---- 4: push, twice
    before = orth.result_count(studies["b"][1])
    r1 = run([AACLIP, "push", scored, "--to", dest, "--aet", "PUSHER"])
    check(orth.result_count(studies["b"][1]) == before + 4 and "4 sent" in r1.stderr,
          "push sent the 4 objects of the score folder")
    r2 = run([AACLIP, "push", scored, "--to", dest, "--aet", "PUSHER"])
    check(orth.result_count(studies["b"][1]) == before + 4 and "0 sent, 4 acknowledged before" in r2.stderr,
          "push again: nothing sent twice")

    # ---- 5: kill -9 during receive and during scoring
    e_dir, e_study, _ = derived_study("e", n=24, first=4)
    s2 = Serve("spool2", free_port(), dest, ["--study-idle", "2"])
    incoming = os.path.join(s2.spool, "incoming", e_study)
    wait_for(lambda: (s2.status().get("receive_pool") or {}).get("files", 0) >= 16, 60, "serve 2's receive pool")
    raw = RawStoreSCU(s2.port)
    statuses = [raw.store(f) for f in files_of(e_dir)[:10]]
    check(statuses == [0] * 10, "raw C-STORE: 10 instances acknowledged (%s)" % statuses)
    # a dataset 1000 bytes short of its pixel data, received into a pool file: the padding after
    # it must not pass for the missing bytes
    short_uid = pydicom.dcmread(files_of(e_dir)[12]).SOPInstanceUID
    st = raw.store(files_of(e_dir)[12], short=1000)
    check(st == 0xC000 and eventually(lambda: "refused %s: instance refused" % short_uid in s2.logtext()),
          "a dataset cut short refused in a pool file (0x%04X)" % (st or 0))
    raw.store(files_of(e_dir)[10], fraction=0.5)  # the 11th stops halfway: the node is receiving it
    # the file it is received into (a pool file renamed, or a new one): <n>.part
    wait_for(lambda: any(f.endswith(".part") for f in os.listdir(os.path.join(s2.spool, "tmp"))), 30,
             "the 11th instance being received")
    s2.kill9()
    raw.close()
    n_before = sum(len(f) for _, _, f in os.walk(incoming))
    check(n_before == 10 and not os.listdir(os.path.join(s2.spool, "jobs")),
          "killed during receive: the 10 acknowledged instances are in the spool, no job yet")
    s2.start()
    check(not [f for f in os.listdir(os.path.join(s2.spool, "tmp")) if not f.endswith(".free")] and
          sum(len(f) for _, _, f in os.walk(incoming)) == 10, "restart: the half-received instance is gone, "
          "the 10 acknowledged ones kept")
    p = storescu(s2.port, files_of(e_dir))  # the sender sends again what was not acknowledged
    p.communicate(timeout=120)
    wait_for(lambda: orth.result_count(e_study) >= 4, 240, "study e's results after the restart")
    wait_for(s2.idle, 60, "serve 2 idle")
    f_dir, f_study, _ = derived_study("f", n=24, first=4)
    p = storescu(s2.port, files_of(f_dir))
    p.communicate(timeout=60)
    # the log line is written as the job starts; 24 slices take more than a second to score
    wait_for(lambda: "scoring (study %s)" % f_study in s2.logtext(), 120, "study f's job to start", step=0.02)
    s2.kill9()
    check(orth.result_count(f_study) == 0, "killed while scoring study f (nothing delivered yet)")
    s2.start()
    check("interrupted while scoring: queued again" in s2.logtext(), "the interrupted job is queued again")
    wait_for(lambda: orth.result_count(f_study) >= 4, 240, "study f's results after the restart")
    wait_for(s2.idle, 60, "serve 2 idle")
    time.sleep(1.0)  # anything sent twice would have arrived by now (the queue is empty)
    check(orth.result_count(e_study) == 4, "study e: results arrived exactly once after kill -9 during receive")
    check(orth.result_count(f_study) == 4, "study f: results arrived exactly once after kill -9 during scoring")
    check(s2.term() == 0, "serve 2 exits 0 on SIGTERM")

    # ---- 6: destination down for a while
    g_dir, g_study, _ = derived_study("g", n=6, first=12)
    s3 = Serve("spool3", free_port(), "ORTHANC@127.0.0.1:%d" % down_port, ["--study-idle", "1", "--retry", "0.5,1"])
    storescu(s3.port, files_of(g_dir)).communicate(timeout=60)
    wait_for(lambda: any(j.get("delivery_attempts", 0) >= 2 for j in s3.status().get("queue", [])), 240,
             "two failed delivery attempts while the destination is down")
    orth2 = Orthanc("orthanc2", {"aaclip": ["AACLIP", "127.0.0.1", s3.port]}, dicom_port=down_port)
    wait_for(lambda: orth2.result_count(g_study) >= 4, 120, "results delivered once the destination is up")
    wait_for(s3.idle, 60, "serve 3 idle")
    check(orth2.result_count(g_study) == 4, "destination down, then up: results delivered once")
    check(s3.term() == 0, "serve 3 exits 0 on SIGTERM")
    orth2.stop()
    orth.stop()
    print("net_orthanc: all checks passed in %.1f s" % (time.monotonic() - t0), flush=True)
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except subprocess.TimeoutExpired as e:
        print("FAIL: timeout: %s" % e, flush=True)
        rc = 1
    finally:
        cleanup()
    sys.exit(rc)
