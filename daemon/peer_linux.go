package daemon

import "golang.org/x/sys/unix"

func sockPeer(fd int) (peerCred, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{uid: int(u.Uid), pid: int(u.Pid)}, nil
}
