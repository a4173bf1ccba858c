; Lapwing for Windows: a per-machine installer built on Linux by Debian's makensis, with no
; download and no plugin beyond NSIS's own (Tauri's NSIS bundling fetches its plugins from
; GitHub). cargo xtask windows builds it:
;   makensis -DVERSION=<x.y.z> -DBIN_DIR=<dir with lapctl.exe> -DOUT_FILE=<installer.exe> lapwing.nsi
; and runs it silently (/S) under Wine, checks what it placed and uninstalls it.
;
; What it places (and what removal keeps) is in installers/windows/README.md.

Unicode true
Target amd64-unicode
RequestExecutionLevel admin
SetCompressor /SOLID lzma
ManifestSupportedOS all

!ifndef VERSION
  !error "define VERSION"
!endif
!ifndef BIN_DIR
  !error "define BIN_DIR"
!endif
!ifndef OUT_FILE
  !error "define OUT_FILE"
!endif

!include "LogicLib.nsh"
!include "StrFunc.nsh"
!include "WinMessages.nsh"
${StrStr}
${UnStrRep}

!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Lapwing"
!define ENVIRONMENT_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

Name "Lapwing ${VERSION}"
OutFile "${OUT_FILE}"
InstallDir "$PROGRAMFILES64\Lapwing"
ShowInstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Function un.onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Section "Lapwing"
  SetOutPath "$INSTDIR"
  File "${BIN_DIR}\lapctl.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; The products folder vendors' installers drop manifests into. Lapwing trusts what is in it
  ; (server keys, addresses), so only administrators and SYSTEM may write it; users read.
  ; ($APPDATA is %ProgramData% for all users.)
  CreateDirectory "$APPDATA\LAP\products.d"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\LAP\products.d" /inheritance:r /grant:r *S-1-5-32-544:(OI)(CI)F *S-1-5-18:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX'
  Pop $0
  ${If} $0 != 0
    DetailPrint "icacls could not restrict $APPDATA\LAP\products.d (exit $0)"
    SetErrorLevel 3
    Abort "The products folder could not be restricted to administrators."
  ${EndIf}

  ; lapctl on every user's PATH (the system Path, once).
  ReadRegStr $1 HKLM "${ENVIRONMENT_KEY}" "Path"
  ${StrStr} $2 "$1;" "$INSTDIR;"
  ${If} $2 == ""
    ${If} $1 == ""
      WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$INSTDIR"
    ${Else}
      WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$1;$INSTDIR"
    ${EndIf}
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=1000
  ${EndIf}

  CreateDirectory "$SMPROGRAMS\Lapwing"
  CreateShortCut "$SMPROGRAMS\Lapwing\Uninstall Lapwing.lnk" "$INSTDIR\uninstall.exe"

  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "Lapwing"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "Lapwing"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  Delete "$INSTDIR\lapctl.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\Lapwing\Uninstall Lapwing.lnk"
  RMDir "$SMPROGRAMS\Lapwing"

  ReadRegStr $1 HKLM "${ENVIRONMENT_KEY}" "Path"
  ${UnStrRep} $2 "$1" ";$INSTDIR" ""
  ${UnStrRep} $2 "$2" "$INSTDIR" ""
  ${If} $2 != $1
    WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$2"
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=1000
  ${EndIf}

  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  ; Kept: %ProgramData%\LAP\products.d (other vendors' manifests), each user's
  ; %LOCALAPPDATA%\lapwing and Credential Manager items.
SectionEnd
