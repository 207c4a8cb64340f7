#!/usr/bin/env bash
# usmc-man.sh PROGRAM NAME SECTION VERSION OUT: the man page of a tool from
# its --help, which is laid out as a manual. txt2man does the roff; the
# NAME paragraph is joined into one line first (a man page's NAME line is
# what whatis and apropos read); a heading with lower case in it
# ("MODES (client)") is raised, as txt2man takes only capitals for one;
# a long option without a short one ("        --bidi") moves to the
# short options' column, so it is an item and not a nested block; an
# option alone on its line is joined with its text's first line. The date is SOURCE_DATE_EPOCH's when set,
# so a package build is reproducible.
set -euo pipefail
prog=$1 name=$2 sec=$3 ver=$4 out=$5
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
	date=$(date -u -d "@$SOURCE_DATE_EPOCH" '+%d %B %Y')
else
	date=$(date -u '+%d %B %Y')
fi
mkdir -p "$(dirname "$out")"
tmp=$out.txt
"$prog" --help >"$tmp"
grep -q '^NAME$' "$tmp" || {
	echo "usmc-man.sh: $prog --help has no NAME section" >&2
	exit 1
}
awk '
	function out(l) {
		# an option alone on its line, its text below: txt2man wants
		# them on one line, two blanks apart
		if (held != "") {
			if (l ~ /^        +[^ ]/) {
				t = l
				sub(/^ +/, "", t)
				print held "  " t
				held = ""
				return
			}
			print held
			held = ""
		}
		if (l ~ /^    -[^ ]/ && l !~ /[^ ]  +[^ ]/) {
			held = l
			return
		}
		print l
	}
	/^NAME$/ { out($0); inname = 1; line = ""; next }
	inname && /^ / { sub(/^ +/, ""); line = line (line == "" ? "" : " ") $0; next }
	inname { out("    " line); inname = 0 }
	/^[A-Z][A-Z]+ .*[a-z]/ { out(toupper($0)); next }
	/^        --[a-z]/ { sub(/^        /, "    ") }
	{ out($0) }
	END { if (held != "") print held }
' "$tmp" | txt2man -t "$name" -s "$sec" -r "usmc $ver" -v "usmc manual" -d "$date" >"$out.tmp"
# txt2man can fail on a pattern of its own making and still exit 0: every
# heading of the text must be a section of the page
want=$(grep -c '^[A-Z]' "$tmp")
got=$(grep -c '^\.SH ' "$out.tmp" || true)
if [ "$got" -ne "$want" ]; then
	echo "usmc-man.sh: $name: $want headings in --help, $got sections in the page" >&2
	exit 1
fi
rm -f "$tmp"
mv "$out.tmp" "$out"
