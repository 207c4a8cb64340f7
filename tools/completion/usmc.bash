# bash completion for the usmc tools: options come from the tool's own
# --help (so they never drift); after usmc-run's and usmc-netns's options,
# the rest of the line is a command of its own.
_usmc_opts()
{
	"$1" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*=\{0,1\}' | sort -u
}

_usmc()
{
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=${COMP_WORDS[0]}
	case ${cmd##*/} in
	usmc-netns)
		# usmc-netns [OPTIONS] NAME on|off|status
		if [[ $cur != -* && $prev != -c && $prev != --conf && $prev != -L && $prev != --lib ]]; then
			local words=0
			for ((i = 1; i < COMP_CWORD; i++)); do
				case ${COMP_WORDS[i]} in
				-c | --conf | -L | --lib) ((i++)) ;;
				-*) ;;
				*) ((words++)) ;;
				esac
			done
			if ((words == 0)); then
				COMPREPLY=($(compgen -W "$(ip netns list 2>/dev/null | cut -d' ' -f1)" -- "$cur"))
			else
				COMPREPLY=($(compgen -W "on off status" -- "$cur"))
			fi
			return
		fi
		;;
	usmc-perf)
		# -i and -t take seconds here (iperf3's meaning), not a file
		case $prev in
		-t | --time | -i | --interval | --timeout | --iterations | -n | --bytes | -P | --parallel | -p | --port | --pingpong | --idle | --linger | --conns | --smc-ports | --transport)
			COMPREPLY=()
			return
			;;
		-c | --client | -B | --bind)
			COMPREPLY=($(compgen -A hostname -- "$cur"))
			return
			;;
		esac
		;;
	usmc-run)
		# the first word not an option (nor an option's value) is
		# the program: complete it and its arguments as a command
		for ((i = 1; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--) ((i++)); break ;;
			-[prctOUPL] | --smc-ports | --rules | --conf | --transport | --transport-options | --ueid | --softroce-port | --log-level | --log-file | --lib | --connect | --listen | --local | --peer | --program)
				((i++)) ;;
			-*) ;;
			*) break ;;
			esac
		done
		if ((i < COMP_CWORD)) && declare -F _command_offset >/dev/null; then
			_command_offset "$i"
			return
		fi
		;;
	esac
	case $prev in
	-c | --conf | --lib | -r | -w | --write | -i | --read | --log-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--log-level)
		COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_usmc_opts "$cmd")" -- "$cur"))
		[[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace 2>/dev/null
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -F _usmc usmc-run usmc-netns usmc-perf usmc-rules usmc-stat usmc-decode usmc-smcctl
