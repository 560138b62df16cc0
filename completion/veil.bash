# bash completion for veil(1): the commands, each command's options, and their values.

_veil() {
	local cur prev cmd i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done

	local commands="run stress caps serve help"
	local run_opts="--firmware --kernel --initrd --cmdline --cpus --mem --vm-type --timing --disk
		--balloon --rng --console --transport --convert-stress --check-stride --seccomp --jail
		--user --api-socket --confidential --launch-manifest --json --quiet --verbose --help"
	local stress_opts="--cpus --mem --seconds --vm-type --destructive --no-dma --foreign-pin
		--seed --json --report --verbose --help"
	local caps_opts="--json --refresh --no-cache --help"
	local serve_opts="--api-socket --seccomp --help"

	case $prev in
	--vm-type | -T)
		mapfile -t COMPREPLY < <(compgen -W "default sw-protected" -- "$cur"); return ;;
	--console)
		mapfile -t COMPREPLY < <(compgen -W "serial virtio" -- "$cur"); return ;;
	--transport)
		mapfile -t COMPREPLY < <(compgen -W "mmio pci" -- "$cur"); return ;;
	--seccomp)
		mapfile -t COMPREPLY < <(compgen -W "on off" -- "$cur"); return ;;
	--firmware | -f)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "selftest conversions refusal" -- "$cur")
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
		return ;;
	--kernel | -k | --initrd | -i | --disk | --api-socket | --launch-manifest | --report)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	--jail)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
	--cpus | -c | --mem | -m | --cmdline | -a | --seconds | -s | --seed | --check-stride | --user)
		return ;;
	esac

	case $cmd in
	"")
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--help --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		fi ;;
	help) mapfile -t COMPREPLY < <(compgen -W "run stress caps serve" -- "$cur") ;;
	run) mapfile -t COMPREPLY < <(compgen -W "$run_opts" -- "$cur") ;;
	stress) mapfile -t COMPREPLY < <(compgen -W "$stress_opts" -- "$cur") ;;
	caps) mapfile -t COMPREPLY < <(compgen -W "$caps_opts" -- "$cur") ;;
	serve) mapfile -t COMPREPLY < <(compgen -W "$serve_opts" -- "$cur") ;;
	esac
}

complete -F _veil veil
