package daemon

import "golang.org/x/sys/unix"

func sockPeer(fd int) (peerCred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	pid, _ := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	return peerCred{uid: int(x.Uid), pid: pid}, nil
}
