//! Who owns a file or folder and who may write it, read from its security descriptor
//! (`GetNamedSecurityInfoW`). The products folder's rule (lapwing-core's `system_folder`) is
//! a pure function of these facts; this module only reads them.
//!
//! Under Wine the descriptor is derived from the Unix owner and mode bits (a mode that lets
//! every user write shows as Everyone with write rights), which is how the reading is tested
//! here; on Windows it is the real access list.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt as _;
use std::path::Path;
use std::ptr::null_mut;

use crate::WindowsWriteAccess;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_SUCCESS, GENERIC_ALL, GENERIC_WRITE, HANDLE, HLOCAL, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, CheckTokenMembership, CreateWellKnownSid,
    DACL_SECURITY_INFORMATION, GetAce, GetTokenInformation, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_MAX_SID_SIZE, TOKEN_QUERY,
    TOKEN_USER, TokenUser, WinBuiltinAdministratorsSid,
};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY, FILE_DELETE_CHILD, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::System::SystemServices::{ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// The rights that let someone change what a folder holds or what a file says, or give
/// themselves that right: add or replace files, delete, change the access list or the owner.
const WRITE_RIGHTS: u32 = FILE_ADD_FILE
    | FILE_ADD_SUBDIRECTORY
    | FILE_DELETE_CHILD
    | DELETE
    | WRITE_DAC
    | WRITE_OWNER
    | GENERIC_WRITE
    | GENERIC_ALL;

/// Reads `path`'s owner and who may write it.
pub fn write_access(path: &Path) -> std::io::Result<WindowsWriteAccess> {
    let wide: Vec<u16> = OsStr::new(path)
        .encode_wide()
        .chain(std::iter::once(0))
        .collect();
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: every out-pointer is valid; on success `descriptor` owns what `owner` and
    // `dacl` point into and is freed below, after they were read.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &raw mut owner,
            null_mut(),
            &raw mut dacl,
            null_mut(),
            &raw mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(std::io::Error::from_raw_os_error(status.cast_signed()));
    }
    let _descriptor = LocalMemory(descriptor);
    // SAFETY: `owner` and `dacl` point into the descriptor, alive until `_descriptor` drops.
    unsafe { read(owner, dacl) }
}

/// # Safety
/// `owner` must be a valid SID and `dacl` null or a valid ACL.
unsafe fn read(owner: PSID, dacl: *const ACL) -> std::io::Result<WindowsWriteAccess> {
    // SAFETY: as the caller promises.
    let owner = unsafe { sid_string(owner) }?;
    if dacl.is_null() {
        return Ok(WindowsWriteAccess {
            owner,
            writers: None,
            unread_entry_types: Vec::new(),
        });
    }
    let mut writers = Vec::new();
    let mut unread_entry_types = Vec::new();
    // SAFETY: `dacl` is a valid ACL; GetAce hands out pointers into it, each starting with an
    // ACE_HEADER, and an allow entry's SID starts at its SidStart field.
    unsafe {
        for index in 0..u32::from((*dacl).AceCount) {
            let mut entry = null_mut();
            if GetAce(dacl, index, &raw mut entry) == 0 {
                return Err(std::io::Error::last_os_error());
            }
            let header = &*(entry as *const ACE_HEADER);
            if u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0 {
                continue; // a template for children, not a right on this object
            }
            match u32::from(header.AceType) {
                ACCESS_ALLOWED_ACE_TYPE => {
                    let allowed = &*(entry as *const ACCESS_ALLOWED_ACE);
                    if allowed.Mask & WRITE_RIGHTS != 0 {
                        let sid = (&raw const allowed.SidStart) as PSID;
                        writers.push(sid_string(sid)?);
                    }
                }
                // A deny entry only takes rights away; ignoring it can only make the rule
                // stricter.
                ACCESS_DENIED_ACE_TYPE => {}
                _ => unread_entry_types.push(header.AceType),
            }
        }
    }
    writers.sort();
    writers.dedup();
    Ok(WindowsWriteAccess {
        owner,
        writers: Some(writers),
        unread_entry_types,
    })
}

/// The SID of the user this process runs as when the process runs as an administrator (its
/// token has the Administrators group enabled: elevated, or Wine), else `None`. What such a
/// user owns is as trustworthy as what Administrators own: they could rewrite anything.
pub fn administrator_running_this() -> Option<String> {
    let mut administrators = [0u8; SECURITY_MAX_SID_SIZE as usize];
    let mut size = SECURITY_MAX_SID_SIZE;
    let mut member = 0;
    // SAFETY: the buffer is SECURITY_MAX_SID_SIZE bytes, as CreateWellKnownSid requires;
    // a null token asks about this thread's own token.
    let is_administrator = unsafe {
        CreateWellKnownSid(
            WinBuiltinAdministratorsSid,
            null_mut(),
            administrators.as_mut_ptr().cast(),
            &raw mut size,
        ) != 0
            && CheckTokenMembership(
                null_mut(),
                administrators.as_mut_ptr().cast(),
                &raw mut member,
            ) != 0
            && member != 0
    };
    if !is_administrator {
        return None;
    }
    current_user().ok()
}

/// Room for a TOKEN_USER and the SID after it (a SID is at most 68 bytes).
const TOKEN_USER_BYTES: u32 = 256;

fn current_user() -> std::io::Result<String> {
    let mut token = null_mut();
    // SAFETY: the current process's pseudo handle needs no closing; `token` is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let token = Handle(token);
    // TOKEN_USER is followed by the SID it points to; TOKEN_USER_BYTES hold any.
    let mut buffer = [0u64; TOKEN_USER_BYTES as usize / 8];
    let mut size = 0;
    // SAFETY: the buffer is 8-aligned and its length is what is passed.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            TOKEN_USER_BYTES,
            &raw mut size,
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID lies in the buffer.
    unsafe {
        let user = &*buffer.as_ptr().cast::<TOKEN_USER>();
        sid_string(user.User.Sid)
    }
}

/// # Safety
/// `sid` must be a valid SID.
unsafe fn sid_string(sid: PSID) -> std::io::Result<String> {
    let mut text = null_mut();
    // SAFETY: as the caller promises; `text` is freed by LocalMemory.
    if unsafe { ConvertSidToStringSidW(sid, &raw mut text) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _text = LocalMemory(text.cast());
    let mut length = 0;
    // SAFETY: ConvertSidToStringSidW returns a NUL-terminated string.
    unsafe {
        while *text.add(length) != 0 {
            length += 1;
        }
        Ok(String::from_utf16_lossy(std::slice::from_raw_parts(
            text, length,
        )))
    }
}

/// Memory the system allocated with LocalAlloc, freed once.
struct LocalMemory(HLOCAL);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the system for this caller, freed exactly once.
            unsafe { LocalFree(self.0) };
        }
    }
}

struct Handle(HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle this module opened, closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under Wine the owner is the Unix owner's SID and a folder every user may write shows
    /// Everyone (S-1-1-0) among the writers; on Windows a fresh temporary folder has no
    /// Everyone entry with write rights either way, so the first assertion holds on both.
    #[test]
    fn reads_the_owner_and_the_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = write_access(dir.path()).expect("read the descriptor");
        assert!(access.owner.starts_with("S-1-"), "{access:?}");
        let writers = access.writers.expect("an access list");
        assert!(!writers.is_empty(), "someone may write a temp folder");
        assert!(writers.iter().all(|sid| sid.starts_with("S-1-")));
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(write_access(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn the_administrator_running_this_is_this_user() {
        // Wine runs every program as an administrator; so do CI's Windows runners.
        let sid = administrator_running_this().expect("an administrator");
        assert_eq!(sid, current_user().expect("the user"));
    }
}
