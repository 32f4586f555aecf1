package atomicfile

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"
)

// restrictToOwner gives the file at path a protected DACL with a single
// entry, full control for the user running the tool, when mode gives group
// or others nothing (0600, 0400): what "mode 0600" means on Windows, where
// os.Chmod only sets the read-only attribute and a new file otherwise
// inherits its directory's entries (on C:\ceremony, for instance,
// Authenticated Users may modify it). PROTECTED_DACL_SECURITY_INFORMATION
// stops the directory's inheritable entries from coming back. Neither
// SYSTEM nor Administrators get an entry; an administrator can still take
// ownership and then read it, as root can read a 0600 file on Unix. Other
// modes keep the inherited DACL.
//
// It is called on the temporary file before any data is written to it;
// the rename or hard link that gives the file its final name keeps the
// security descriptor.
func restrictToOwner(path string, mode fs.FileMode) error {
	if !ownerOnly(mode) {
		return nil
	}
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("cannot read the current user's SID: %w", err)
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_ALL,
		AccessMode:        windows.SET_ACCESS,
		Inheritance:       windows.NO_INHERITANCE,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_USER,
			TrusteeValue: windows.TrusteeValueFromSID(user.User.Sid),
		},
	}}, nil)
	if err != nil {
		return fmt.Errorf("cannot build an access list for the current user: %w", err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
	if err != nil {
		return &fs.PathError{Op: "restrict access to the current user", Path: path, Err: err}
	}
	return nil
}
