#!/usr/bin/env python3
"""Give a local image the architecture of the binaries it carries, under a new tag.

    scripts/image-arch.py SOURCE_IMAGE ARCH TARGET_TAG      (ARCH: amd64 or arm64)

Why this exists: without buildx, the classic builder of Docker Engine 20.10 cannot build a
FROM scratch image for another platform (`docker build --platform linux/arm64` fails at the
second step: "image ... was found but does not match the specified platform"). Our images only
copy files, so the arm64 image is built for the host platform and this script then rewrites
one thing, the `architecture` (and `variant`) of the image config, as buildx would have set
it. Layers are untouched (same diff_ids); the config gets its new digest; `docker load` takes
the result. Uses only the docker CLI (save/load) and the standard library.
"""

import hashlib
import io
import json
import subprocess
import sys
import tarfile

VARIANTS = {"amd64": None, "arm64": "v8"}


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[2] not in VARIANTS:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source, arch, target = sys.argv[1:]

    saved = subprocess.run(["docker", "save", source], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        members = {m.name: (m, archive.extractfile(m).read() if m.isfile() else None)
                   for m in archive.getmembers()}

    manifest = json.loads(members["manifest.json"][1])
    if len(manifest) != 1:
        print(f"image-arch.py: expected one image in `docker save {source}`", file=sys.stderr)
        return 1
    old_config_name = manifest[0]["Config"]
    config = json.loads(members[old_config_name][1])
    config["architecture"] = arch
    if VARIANTS[arch]:
        config["variant"] = VARIANTS[arch]
    else:
        config.pop("variant", None)
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    new_config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest[0]["Config"] = new_config_name
    manifest[0]["RepoTags"] = [target]

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, (member, data) in members.items():
            # `repositories` would re-tag the source; the manifest's RepoTags is enough.
            if name in ("manifest.json", old_config_name, "repositories"):
                continue
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in ((new_config_name, config_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "load", "--quiet"], input=out.getvalue(), check=True,
                   stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
