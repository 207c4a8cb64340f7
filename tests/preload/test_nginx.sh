#!/usr/bin/env bash
# Debian's nginx (epoll, edge-triggered; one worker, daemon off, a config
# of its own in the test's directory) under usmc-run serves a 100 MiB file
# to curl, also under usmc-run, over softroce; in the lab (h2 -> h1) and
# on one host (h1, 127.0.0.1 -> 127.0.0.2). Twice each: with sendfile on
# (the preload's sendfile) and off (nginx's writev), plus a small file. The
# sha256 of every body must match the file's, and curl and nginx's worker
# (the process that accepts: the master only listens) report SMC-R
# connections only. nginx clears its workers' environment: the config
# passes usmc's variables on with "env" (the worker's runtime starts after
# the fork and reads them; the stats line needs USMC_STATS).
# Then nginx with worker_processes 4 ("listen ... reuseport": a listener
# per worker, so the kernel spreads the connections over them) in h1,
# fetched by 48 curl processes in h2, 12 at a time: every body byte-exact,
# every curl and every worker that served over SMC-R only, each worker a
# process of its own sharing softroce's UDP port on 10.77.0.1.
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss nginx curl sha256sum
t_lab_up
A_PORTS=8080
MB=${A_MB:-100}
mkdir -p "$t_work/www"
head -c $((MB * 1048576)) /dev/urandom >"$t_work/www/big"
head -c 4097 /dev/urandom >"$t_work/www/small"
want_big=$(sha256sum <"$t_work/www/big" | cut -d' ' -f1)
want_small=$(sha256sum <"$t_work/www/small" | cut -d' ' -f1)

conf() { # ADDR SENDFILE [WORKERS [LISTEN_OPTS]]: the config for one run
	cat <<CONF
daemon off;
master_process on;
# nginx clears its workers' environment but for the variables named here
env USMC_STATS;
env USMC_STAT_DIR;
env USMC_DEBUG;
env USMC_SMC_PORTS;
env USMC_SOFTROCE_PORT;
env USMC_TRANSPORT;
env USMC_SHM;
worker_processes ${3:-1};
user root;
pid $t_work/nginx.pid;
error_log $t_work/nginx-error.log info;
events { use epoll; worker_connections 64; }
http {
	access_log $t_work/nginx-access.log;
	client_body_temp_path $t_work/tmp-body;
	proxy_temp_path $t_work/tmp-proxy;
	fastcgi_temp_path $t_work/tmp-fastcgi;
	uwsgi_temp_path $t_work/tmp-uwsgi;
	scgi_temp_path $t_work/tmp-scgi;
	sendfile $2;
	keepalive_timeout 5;
	server {
		listen $1:8080 ${4:-};
		root $t_work/www;
	}
}
CONF
}

run() { # WHERE SENDFILE
	a_where "$1"
	local tag=$1-sendfile-$2 f got rc
	conf "$A_SADDR" "$2" >"$t_work/nginx.conf"
	a_server "nginx-$tag" 8080 nginx -p "$t_work" -c "$t_work/nginx.conf" -e "$t_work/nginx-error.log" || {
		a_fail "$tag: nginx did not start: $(tail -3 "$t_work/nginx-error.log")"
		return
	}
	for f in big small; do
		rc=0
		T_TIMEOUT=180 a_client "curl-$tag-$f" curl -sS --max-time 170 -o "$t_work/got-$f" \
			-w '%{http_code} %{size_download} %{speed_download}' "http://$A_SADDR:8080/$f" || rc=$?
		got=$(sha256sum <"$t_work/got-$f" | cut -d' ' -f1)
		local want=$want_big
		[ $f = small ] && want=$want_small
		set -- $(cat "$t_work/curl-$tag-$f.out")
		if [ $rc = 0 ] && [ "$1" = 200 ] && [ "$got" = "$want" ] && a_smcr "$t_work/curl-$tag-$f.stats" 1; then
			t_log "ok $tag: /$f, HTTP $1, $2 bytes at $(($(printf %.0f "$3") / 1048576)) MiB/s, sha256 $got, curl $A_SMCR"
		else
			a_fail "$tag: /$f: curl exit $rc, '$*', sha256 $got (want $want)"
			a_show "curl-$tag-$f"
		fi
		rm -f "$t_work/got-$f"
	done
	# SIGQUIT: graceful; the worker and the master exit normally (stats lines)
	a_stop $a_spid QUIT || a_fail "$tag: nginx exit status $?"
	if a_smcr "$t_work/nginx-$tag.stats" 2 && [ "$(grep -c 'stats:' "$t_work/nginx-$tag.stats")" = 2 ]; then
		t_log "ok $tag: nginx master and worker: $A_SMCR"
	else
		a_fail "$tag: nginx not all over SMC-R"
		a_show "nginx-$tag"
	fi
}

workers() { # WHERE
	a_where "$1"
	local tag=$1-workers i j pids rc bad=0 ok=0
	conf "$A_SADDR" on 4 reuseport >"$t_work/nginx.conf"
	a_server "nginx-$tag" 8080 nginx -p "$t_work" -c "$t_work/nginx.conf" -e "$t_work/nginx-error.log" || {
		a_fail "$tag: nginx did not start: $(tail -3 "$t_work/nginx-error.log")"
		return
	}
	head -c 1048573 /dev/urandom >"$t_work/www/mid"
	local want_mid
	want_mid=$(sha256sum <"$t_work/www/mid" | cut -d' ' -f1)
	: >"$t_work/curl-$tag.stats"
	for i in $(seq 4); do
		pids=()
		for j in $(seq 12); do
			local f=mid
			[ $((j % 3)) = 0 ] && f=small
			t_usmc "$A_CHOST" "$t_work/curl-$tag.stats" "$A_PORTS" curl -sS --max-time 60 \
				-o "$t_work/got-$tag-$i-$j-$f" -w '%{http_code}' "http://$A_SADDR:8080/$f" \
				>"$t_work/curl-$tag-$i-$j.out" 2>"$t_work/curl-$tag-$i-$j.err" &
			pids+=($!)
		done
		for j in $(seq 12); do
			rc=0
			wait "${pids[j - 1]}" || rc=$?
			local f=mid want=$want_mid
			[ $((j % 3)) = 0 ] && f=small want=$want_small
			if [ $rc = 0 ] && [ "$(cat "$t_work/curl-$tag-$i-$j.out")" = 200 ] &&
				[ "$(sha256sum <"$t_work/got-$tag-$i-$j-$f" | cut -d' ' -f1)" = "$want" ]; then
				ok=$((ok + 1))
			else
				bad=$((bad + 1))
				t_log "$tag: curl $i-$j /$f: exit $rc, HTTP '$(cat "$t_work/curl-$tag-$i-$j.out")': $(tail -2 "$t_work/curl-$tag-$i-$j.err")"
			fi
			rm -f "$t_work/got-$tag-$i-$j-$f"
		done
	done
	[ $bad = 0 ] || a_fail "$tag: $bad of 48 fetches failed"
	a_smcr "$t_work/curl-$tag.stats" 48 && [ "$(grep -c 'stats:' "$t_work/curl-$tag.stats")" = 48 ] ||
		a_fail "$tag: the 48 curl processes were not all over SMC-R"
	t_log "ok $tag: $ok of 48 fetches byte-exact; curl $A_SMCR"
	a_stop $a_spid QUIT || a_fail "$tag: nginx exit status $?"
	# master + 4 workers, each a stats line; those that served, SMC-R only
	local lines served
	lines=$(grep -c 'stats:' "$t_work/nginx-$tag.stats")
	served=$(grep -c 'stats: smcr=[1-9]' "$t_work/nginx-$tag.stats")
	if [ "$lines" = 5 ] && a_smcr "$t_work/nginx-$tag.stats" 48 && [ "$served" -ge 2 ]; then
		t_log "ok $tag: nginx $A_SMCR; $served of 4 workers served: $(grep -o 'smcr=[0-9]*' "$t_work/nginx-$tag.stats" | tr '\n' ' ')"
	else
		a_fail "$tag: nginx: $lines stats lines (want 5: master + 4 workers), $served workers served (want >= 2)"
		a_show "nginx-$tag"
	fi
}

for w in lab local; do
	run $w on
	run $w off
done
workers lab
a_end
