"""DIR/README.txt of a backup (English and Chinese): what the folder is, how to restore it
and prove it complete, and how the keys travel (never with the backup)."""
from __future__ import annotations

__all__ = ["README", "write_readme"]

README = """sealcam archive backup / sealcam 档案备份
=========================================

This folder is an off-site backup of a sealcam station archive (R14: monthly, off site),
made by `sealcam backup --archive ARCHIVE --to THIS-FOLDER`. Each backup is recorded in
the station's signed log as a `backup_made` event naming the checkpoint it holds.

  objects/       the archive's recordings and documents, content-addressed (each file is
                 named by the SHA-256 of its content), byte for byte as at the station;
                 objects encrypted at rest stay encrypted
  snapshots/     the station log and the index of each backup (the catalogue is
                 rebuilt from the signed log on restore); LATEST names the newest
                 complete one

To restore into a new, empty folder and prove it complete:

  sealcam restore --from THIS-FOLDER --archive NEW --expect-key FINGERPRINT
  sealcam verify NEW

FINGERPRINT is the station key's, as `sealcam backup` prints it: keep it apart from this
folder (anyone who can write here could replace the key in it).

KEYS. The station's private key (station.key) is NOT in this backup, nor is the at-rest
key that decrypts objects encrypted at rest. The private key stays at the station; if the
station is lost, it travels separately from this backup, under the custodian's control
(a sealed envelope or a token held by the archive head), never on the same disk. The
at-rest key (the file station.toml [confidentiality] key_file names) travels likewise,
separately. Without the private key a restored archive can be read and verified
(station.pub is here) but not written; without the at-rest key its encrypted objects
cannot be read.

本文件夹是 sealcam 执法记录站档案的异地备份（R14：每月一次，异地保存），由
`sealcam backup --archive 档案 --to 本文件夹` 生成。每次备份都作为 `backup_made` 事件
写入站点签名日志，并记明所含的检查点。

  objects/       档案中的录像和文书，按内容寻址（文件名即内容的 SHA-256），与站点中
                 的字节完全相同；静态加密的对象仍保持加密
  snapshots/     每次备份的站日志和索引（目录在恢复时由签名日志重建）；LATEST 记明最新
                 的完整快照

恢复到一个新的空文件夹并证明其完整：

  sealcam restore --from 本文件夹 --archive 新档案 --expect-key 指纹
  sealcam verify 新档案

指纹即 `sealcam backup` 输出的站点密钥指纹：须与本文件夹分开保存（能写入本文件夹的人
可以替换其中的公钥）。

密钥：本备份中不含站点私钥（station.key），也不含解密静态加密对象的静态加密密钥。
私钥留在站点；如站点损毁，私钥须与本备份分开、由档案保管人控制转移（密封信封或由
档案室负责人保管的令牌），绝不与本备份放在同一介质上。静态加密密钥（station.toml
[confidentiality] key_file 所指文件）同样单独转移。没有私钥，恢复的档案可以读取和
核验（此处有 station.pub），但不能写入；没有静态加密密钥，其中加密的对象无法读取。
"""


def write_readme(d):
    d.write("README.txt", README.encode("utf-8"))
