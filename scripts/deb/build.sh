#!/bin/bash
# npm run package (after npm run build): the Debian package, built with dpkg-deb alone (no
# debhelper), into build/. Its path is the last line printed.
#
#   /usr/lib/smmapd/dist/cli      the built programs (scripts/bundle.js)
#   /usr/lib/smmapd/node_modules  what they require at run time (modules.js), with
#                                 better-sqlite3's native addon: hence Architecture: amd64
#   /usr/bin/smmapd, smmapctl     links to them
#   /usr/share/man/man8           both man pages
#   /lib/systemd/system           conf/systemd's units, starting /usr/bin/smmapd
#   /etc/smmapd.conf              conf/smmapd.conf, running as user smmapd (a conffile)
#   /usr/share/doc/smmapd         copyright (copyright.js), changelog.Debian.gz, examples
# postinst creates the user smmapd, /var/lib/smmapd and the store; postrm purge removes them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/deb
cd "$ROOT"
die() { echo "scripts/deb/build.sh: $*" >&2; exit 1; }

for f in dist/cli/smmapd.js dist/cli/smmapd.bundle.js dist/cli/smmapctl.js; do
  [[ -f $f ]] || die "$f is missing: run npm run build first"
done
UPSTREAM=$(node -p "require('./package.json').version")
VERSION=$UPSTREAM-1
[[ $(head -1 "$HERE/changelog") == "smmapd ($VERSION) "* ]] || die "scripts/deb/changelog does not start with version $VERSION"
ARCH=$(dpkg --print-architecture)
# better-sqlite3's addon is built for this Node's ABI (NODE_MODULE_VERSION): one major only.
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
(( NODE_MAJOR >= 20 )) || die "Node $NODE_MAJOR built the addon; smmapd needs Node 20 or later"
ADDON=node_modules/better-sqlite3/build/Release/better_sqlite3.node
[[ -f $ADDON ]] || die "$ADDON is missing (npm install builds it)"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/smmapd-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/pkg
LIB=$P/usr/lib/smmapd
umask 022
mkdir -p "$P/DEBIAN" "$LIB/dist/cli" "$P/usr/bin" "$P/usr/share/man/man8" "$P/lib/systemd/system" \
  "$P/etc" "$P/usr/share/doc/smmapd/examples"

# the programs: the entries run by /usr/bin name node by its path, not through env
cp dist/cli/smmapd.js dist/cli/smmapd.bundle.js dist/cli/smmapctl.js "$LIB/dist/cli/"
[[ -f dist/cli/smmapd.bundle.js.cache ]] && cp dist/cli/smmapd.bundle.js.cache "$LIB/dist/cli/"
sed -i '1s|^#!/usr/bin/env node$|#!/usr/bin/node|' "$LIB/dist/cli/smmapd.js" "$LIB/dist/cli/smmapctl.js"
node -e 'const p=require("./package.json"); process.stdout.write(JSON.stringify({name:p.name,version:p.version,license:p.license,private:true,type:p.type},null,2)+"\n")' >"$LIB/package.json"
ln -s ../lib/smmapd/dist/cli/smmapd.js "$P/usr/bin/smmapd"
ln -s ../lib/smmapd/dist/cli/smmapctl.js "$P/usr/bin/smmapctl"

# run-time packages, without what only their development or installation uses
MODULES=$(node "$HERE/modules.js")
for m in $MODULES; do
  mkdir -p "$LIB/$m"
  if [[ $m == node_modules/better-sqlite3 ]]; then
    cp "$m/package.json" "$LIB/$m/"
    mkdir -p "$LIB/$m/build/Release"
    cp "$ADDON" "$LIB/$m/build/Release/"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$LIB/$m/build/Release/better_sqlite3.node"
  else
    tar -C "$m" --exclude=./node_modules -cf - . | tar -C "$LIB/$m" -xf -
  fi
done
find "$LIB/node_modules" -type d \( -name test -o -name tests -o -name '.?*' -o -name docs -o -name example -o -name examples -o -name typings \) -prune -exec rm -rf {} +
find "$LIB/node_modules" -type f \( -name '.git*' -o -name '*.html' -o -name '*.sh' -o -iname 'security.*' -o -iname '*.md' -o -iname '*.markdown' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
  -o -iname 'license*' -o -iname 'licence*' -o -iname 'copying*' -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.prettierrc*' \
  -o -name '.editorconfig' -o -name '.travis.yml' -o -name 'tsconfig*.json' -o -name '*.tsbuildinfo' \) -delete
find "$LIB" -type d -empty -delete
# what was left out must not be missed: load every package the bundles require
DEPS=$(node -p 'Object.keys(require("./package.json").dependencies).join(" ")')
(cd "$LIB/dist/cli" && node -e '
  for (const d of process.argv.slice(1)) require(d === "better-sqlite3" ? "../../node_modules/better-sqlite3/build/Release/better_sqlite3.node" : d);
  require("mysql2/promise");' $DEPS) || die "the staged node_modules cannot load a dependency"
find "$P" -type d -exec chmod 0755 {} +
find "$LIB/node_modules" -type f -exec chmod 0644 {} +
# a package's command-line scripts (pino's bin.js): executable, as their #! says
find "$LIB/node_modules" -type f -name '*.js' -exec grep -l -m1 '^#!' {} + | while read -r f; do
  [[ $(head -c2 "$f") == '#!' ]] && chmod 0755 "$f"
done

# man pages, units, configuration, documentation
for m in smmapd smmapctl; do gzip -9n <"man/$m.8" >"$P/usr/share/man/man8/$m.8.gz"; done
for u in conf/systemd/*.service conf/systemd/*.socket; do
  sed -e 's|^ExecStart=/usr/bin/env smmapd |ExecStart=/usr/bin/smmapd |' \
      -e '/^# smmapd from systemd.s PATH/d' -e '/^# in \/usr\/local\/bin with node/d' \
      -e 's|^# Install: cp smmapd.socket smmapd.service /etc/systemd/system/ &&|# Install: (the Debian package has put both in /lib/systemd/system)|' \
      "$u" >"$P/lib/systemd/system/$(basename "$u")"
  ! grep -q '^ExecStart=/usr/bin/env' "$P/lib/systemd/system/$(basename "$u")" || die "$u: ExecStart not rewritten to /usr/bin/smmapd"
done
sed -e 's|^#smmapd_user: smmapd$|smmapd_user: smmapd|' -e 's|^#smmapd_group: smmapd$|smmapd_group: smmapd|' \
  -e '1a #\n# Debian package: as shipped, this file differs from the defaults only in\n# smmapd_user and smmapd_group (smmapd): the daemon runs as the system user\n# smmapd, and smmapctl, run as root, keeps the store readable by it.' \
  conf/smmapd.conf >"$P/etc/smmapd.conf"
grep -qx 'smmapd_user: smmapd' "$P/etc/smmapd.conf" && grep -qx 'smmapd_group: smmapd' "$P/etc/smmapd.conf" \
  || die "conf/smmapd.conf has no '#smmapd_user: smmapd' / '#smmapd_group: smmapd' lines to set"
chmod 0644 "$P/etc/smmapd.conf"
DOC=$P/usr/share/doc/smmapd
node "$HERE/copyright.js" $MODULES >"$DOC/copyright"
gzip -9n <"$HERE/changelog" >"$DOC/changelog.Debian.gz"
for f in conf/postfix-main.cf conf/cyrus.conf conf/inetd.conf conf/sendmail.mc; do
  cp "$f" "$DOC/examples/"
done
mkdir -p "$DOC/examples/maps" "$DOC/examples/xinetd.d" && cp conf/maps/*.cf "$DOC/examples/maps/" && cp conf/xinetd.d/smmapd "$DOC/examples/xinetd.d/"
find "$DOC" -type f -exec chmod 0644 {} +

# control files
SHLIBS=$(mkdir -p "$STAGE/src/debian" && cd "$STAGE/src" &&
  printf 'Source: smmapd\n\nPackage: smmapd\nArchitecture: any\n' >debian/control &&
  dpkg-shlibdeps -O -e"$LIB/node_modules/better-sqlite3/build/Release/better_sqlite3.node" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $SHLIBS ]] || die "dpkg-shlibdeps found no libraries for the addon"
# nodejs (>= 20) with Node 20, the only major whose ABI the addon speaks
DEPENDS="nodejs (>= $NODE_MAJOR), nodejs (<< $((NODE_MAJOR + 1))), adduser, $SHLIBS"
SIZE=$(du -sk --exclude=DEBIAN "$P" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$SIZE|" -e "s|@DEPENDS@|$DEPENDS|" "$HERE/control" >"$P/DEBIAN/control"
echo /etc/smmapd.conf >"$P/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$HERE/$s" "$P/DEBIAN/$s"; done
(cd "$P" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$P/DEBIAN/md5sums"
chmod 0644 "$P/DEBIAN/control" "$P/DEBIAN/conffiles" "$P/DEBIAN/md5sums"

mkdir -p build
DEB=$ROOT/build/smmapd_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
echo "$DEB"
